"""Grade one submission: run it sandboxed, then judge every test in this clean process.

The verdict of each test is decided here, with the hidden checks and float64 references that the
submission's process cannot see, on inputs drawn after the notebook finished running.
Usage (one submission, one JSON result; the batch grader runs this as a subprocess):

    python -m autograder.judge ASSIGNMENT NOTEBOOK RESULT_JSON [--timeout S] [--memory-mb M]
"""
import argparse
import json
import os
import tempfile
import time
import traceback
from pathlib import Path

from . import assignments, integrity, notebook_shape
from .checks import core, trace
from .checks.core import CheckFailure, SkipCheck, StudentCodeError
from .checks.trace import MeasurementVoided
from .limits import Limits, isolation_available
from .remote import resolve
from .sandbox import SandboxedNotebook, SandboxFailure
from .submissions import MAX_NOTEBOOK_BYTES
from .testfiles import load_questions

MAX_RESTARTS = 3
core.JUDGE_REPORTS_SKIPS = True


def read_submission(path: Path, target: Path, deadline: float, limits: Limits):
    """Check the submission at `path` and write the minimal notebook the sandbox runs to `target`.
    Returns None, or a status for the TA. The reading happens in a child process under the
    submission's deadline and memory cap (see `notebook_shape`): the judge never parses it."""
    try:
        size = path.stat().st_size
    except OSError as error:
        return f"not readable: {error.strerror or error}"
    if size > MAX_NOTEBOOK_BYTES:
        return f"not graded: the notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MB"
    problem = notebook_shape.read_notebook(path, target, deadline, limits.memory_mb)
    return f"timeout after {limits.timeout_s:g} s" if problem == "timeout" else problem


class Session:
    """A sandboxed submission that is restarted when a test crashes or hangs it."""

    def __init__(self, notebook, limits, gpu, zygote=None, deadline=None):
        self.notebook, self.limits, self.gpu, self.zygote = notebook, limits, gpu, zygote
        self.box = None
        self.ready = None
        self.restarts = 0
        self.deadline = time.monotonic() + limits.timeout_s if deadline is None else deadline

    def open(self):
        self.box = SandboxedNotebook(self.notebook, self.limits, gpu=self.gpu, deadline=self.deadline,
                                     zygote=self.zygote)
        self.box.start()
        self.ready = self.box.wait_ready()
        return self.ready

    def request(self, message):
        return self.box.request(message)

    def close(self):
        if self.box is not None:
            self.box.close()

    def restart(self):
        self.close()
        self.restarts += 1
        return self.open()


def grade(assignment: str, notebook: Path, limits: Limits, gpu=None, gpu_policy="exclude", zygote=None,
          accept_review=False) -> dict:
    """Grade one notebook. `zygote`: address of a warm `sandbox.ZygoteServer` (faster start).
    `accept_review`: a TA reviewed this submission and trusts its measurements."""
    spec = assignments.get(assignment)
    questions = load_questions(spec.zip_path)
    gpu = assignments.cuda_available() if gpu is None else gpu
    result = {
        "assignment": assignment,
        "notebook": str(notebook),
        "isolation": "namespaces" if isolation_available() else "process only (namespaces unavailable)",
        "device": "cuda" if gpu else "cpu",
        "questions": {q.name: {"score": 0.0, "possible": q.possible, "cases": []} for q in questions},
        "status": "Completed",
        "gpu_policy": gpu_policy,
        "cell_errors": [],
        "output_tail": "",
        "integrity": integrity.empty_record(accept_review),
    }
    started = time.monotonic()
    deadline = started + limits.timeout_s  # reading the file counts against it too
    with tempfile.TemporaryDirectory(prefix="seqmod-judge-") as scratch:
        minimal = Path(scratch) / "submission.ipynb"
        problem = read_submission(Path(notebook), minimal, deadline, limits)
        if problem:
            result["status"] = problem
            _fail_all(result, questions, problem)
            return _finish(result, started)
        try:  # the minimal notebook holds only cell sources, so the scan is cheap
            result["integrity"]["hits"] = integrity.scan(json.loads(minimal.read_text()))
        except Exception:  # noqa: BLE001 - the scan is evidence for a TA, never a reason to fail
            pass
        trace.TRUST_MEASUREMENTS = bool(accept_review)
        session = Session(minimal, limits, gpu, zygote, deadline)
        try:
            ready = session.open()
            result["cell_errors"] = ready.get("cell_errors", [])[:20]
            result["notebook_seconds"] = ready.get("seconds")
            _run_cases(session, questions, result)
        except SandboxFailure as failure:
            result["status"] = failure.status
            _fail_remaining(result, questions, failure.status)
        finally:
            trace.TRUST_MEASUREMENTS = False
            if session.box is not None:
                result["output_tail"] = session.box.output_text()[-4000:]
            session.close()
    return _finish(result, started)


def _run_cases(session, questions, result):
    for question in questions:
        for case in question.cases:
            record = {"name": case.name, "points": case.points, "hidden": case.hidden}
            case_started = time.monotonic()
            trace.EVIDENCE.clear()
            try:
                case.func(**resolve(session, case.params))
                record.update(passed=True, message="passed")
            except MeasurementVoided as voided:
                record.update(passed=False, message=str(voided), voided=True)
                result["integrity"]["voided"].append({"test": case.name, "reason": voided.reason})
            except SkipCheck as skip:
                record.update(passed=False, skipped=True, message=f"not run: {skip}")
            except (CheckFailure, AssertionError) as failure:
                record.update(passed=False, message=str(failure) or "assertion failed")
            except StudentCodeError as error:
                record.update(passed=False, message=f"your code raised an error: {error}")
            except SandboxFailure as failure:
                record.update(passed=False, message=f"this test stopped the notebook: {failure.status}")
                result.setdefault("incidents", []).append(f"{case.name}: {failure.status}")
                if failure.status.startswith("timeout after") or session.restarts >= MAX_RESTARTS:
                    result["questions"][question.name]["cases"].append(record)
                    raise
                session.restart()
            except Exception as error:  # noqa: BLE001 - a check that breaks on odd output fails
                record.update(passed=False, message=f"could not check the result ({type(error).__name__}: {error})")
                result.setdefault("grader_errors", []).append(traceback.format_exc()[-2000:])
            result["integrity"]["notes"] += [{"test": case.name, "note": n} for n in dict.fromkeys(trace.EVIDENCE)]
            record["seconds"] = round(time.monotonic() - case_started, 3)
            entry = result["questions"][question.name]
            entry["cases"].append(record)
            if record["passed"]:
                entry["score"] += case.points


def _fail_all(result, questions, reason):
    for question in questions:
        result["questions"][question.name]["cases"] = [
            {"name": c.name, "points": c.points, "hidden": c.hidden, "passed": False,
             "message": f"not run: {reason}"} for c in question.cases]


def _fail_remaining(result, questions, reason):
    for question in questions:
        done = {c["name"] for c in result["questions"][question.name]["cases"]}
        for case in question.cases:
            if case.name not in done:
                result["questions"][question.name]["cases"].append(
                    {"name": case.name, "points": case.points, "hidden": case.hidden,
                     "passed": False, "message": f"not run: {reason}"})


def _finish(result, started):
    if result.get("gpu_policy") == "exclude":
        for q in result["questions"].values():
            q["possible"] -= sum(c["points"] for c in q["cases"] if c.get("skipped"))
    total = sum(q["score"] for q in result["questions"].values())
    possible = sum(q["possible"] for q in result["questions"].values())
    notes = []
    memory_words = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "out of memory")
    if any(any(w in e["error"] for w in memory_words) for e in result.get("cell_errors", [])):
        notes.append("a cell hit the memory limit")
    if "more bytes of output dropped" in result.get("output_tail", ""):
        notes.append("output truncated")
    if result.get("cell_errors"):
        notes.append(f"{len(result['cell_errors'])} cell(s) raised errors")
    record = integrity.finish(result.setdefault("integrity", integrity.empty_record()))
    if record["accepted"]:
        notes.append("integrity review accepted: measurements trusted")
    if notes and result["status"] == "Completed":
        result["status"] = "Completed (" + "; ".join(notes) + ")"
    if record["voided"] and not record["accepted"] and result["status"].startswith("Completed"):
        result["status"] = f"integrity review: {integrity.reason(record)}"
    result["total"] = total
    result["possible"] = possible
    result["seconds"] = round(time.monotonic() - started, 2)
    result["skipped"] = [c["name"] for q in result["questions"].values() for c in q["cases"]
                         if c.get("skipped")]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("result", type=Path)
    parser.add_argument("--timeout", type=float, default=Limits.timeout_s)
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_mb)
    parser.add_argument("--call-timeout", type=float, default=Limits.call_timeout_s)
    parser.add_argument("--gpu-policy", choices=("exclude", "required"), default="exclude")
    parser.add_argument("--accept-review", action="store_true", help="trust this submission's measurements")
    args = parser.parse_args(argv)
    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb, call_timeout_s=args.call_timeout)
    result = grade(args.assignment, args.notebook, limits, gpu_policy=args.gpu_policy,
                   accept_review=args.accept_review)
    tmp = args.result.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, args.result)


if __name__ == "__main__":
    main()
