"""Grade one submission: run it sandboxed, then judge every test in this clean process.

The verdict of each test is decided here, with the hidden checks and float64 references that the
submission's process cannot see, on inputs drawn after the notebook finished running.
Usage (one submission, one JSON result; the batch grader runs this as a subprocess):

    python -m autograder.judge ASSIGNMENT NOTEBOOK RESULT_JSON [--timeout S] [--memory-mb M]
"""
import argparse
import json
import os
import time
import traceback
from pathlib import Path

import nbformat

from . import assignments
from .checks import core
from .checks.core import CheckFailure, SkipCheck, StudentCodeError
from .remote import resolve
from .sandbox import Limits, SandboxedNotebook, SandboxFailure, isolation_available
from .testfiles import load_questions

MAX_RESTARTS = 3
core.JUDGE_REPORTS_SKIPS = True


def validate_notebook(path: Path):
    """Return None when the file is a readable notebook, else a status for the TA."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        return f"not readable: {error}"
    if not raw.strip():
        return "not a notebook: the file is empty"
    try:
        shape = json.loads(raw)
    except (ValueError, RecursionError):
        shape = None  # nbformat says what is wrong below
    if shape is not None and not (isinstance(shape, dict) and isinstance(shape.get("cells", []), list)
                                  and "nbformat" in shape):
        return "not a notebook: the file is JSON, but not a Jupyter notebook"
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as error:  # noqa: BLE001 - any parse failure means the file is not a notebook
        return f"not a notebook: {type(error).__name__}: {str(error)[:200]}"
    if not any(c.get("cell_type") == "code" for c in nb.cells):
        return "not a notebook: it has no code cells"
    return None


class Session:
    """A sandboxed submission that is restarted when a test crashes or hangs it."""

    def __init__(self, notebook, limits, gpu, zygote=None):
        self.notebook, self.limits, self.gpu, self.zygote = notebook, limits, gpu, zygote
        self.box = None
        self.ready = None
        self.restarts = 0
        self.deadline = time.monotonic() + limits.timeout_s

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


def grade(assignment: str, notebook: Path, limits: Limits, gpu=None, gpu_policy="exclude", zygote=None) -> dict:
    """Grade one notebook. `zygote`: address of a warm `sandbox.ZygoteServer` (faster start)."""
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
    }
    started = time.monotonic()
    problem = validate_notebook(notebook)
    if problem:
        result["status"] = problem
        _fail_all(result, questions, problem)
        return _finish(result, started)
    session = Session(notebook, limits, gpu, zygote)
    try:
        ready = session.open()
        result["cell_errors"] = ready.get("cell_errors", [])[:20]
        result["notebook_seconds"] = ready.get("seconds")
        _run_cases(session, questions, result)
    except SandboxFailure as failure:
        result["status"] = failure.status
        _fail_remaining(result, questions, failure.status)
    finally:
        if session.box is not None:
            result["output_tail"] = session.box.output_text()[-4000:]
        session.close()
    return _finish(result, started)


def _run_cases(session, questions, result):
    for question in questions:
        for case in question.cases:
            record = {"name": case.name, "points": case.points, "hidden": case.hidden}
            case_started = time.monotonic()
            try:
                case.func(**resolve(session, case.params))
                record.update(passed=True, message="passed")
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
    if notes and result["status"] == "Completed":
        result["status"] = "Completed (" + "; ".join(notes) + ")"
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
    args = parser.parse_args(argv)
    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb, call_timeout_s=args.call_timeout)
    result = grade(args.assignment, args.notebook, limits, gpu_policy=args.gpu_policy)
    tmp = args.result.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, args.result)


if __name__ == "__main__":
    main()
