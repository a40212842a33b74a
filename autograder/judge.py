"""Grade one submission: run it sandboxed, then judge every test in this clean process.

The verdict of each test is decided here, with the hidden checks and float64 references that the
submission's process cannot see, on inputs drawn after the notebook finished running. The batch
grader (`grade.py`) calls `grade` in the processes of its pool.
"""
import json
import tempfile
import time
import traceback
from pathlib import Path

from . import assignments, integrity, notebook_shape, settings
from .checks import core, trace
from .checks.core import CheckFailure, SkipCheck, StudentCodeError
from .checks.trace import MeasurementVoided
from .limits import FailureKind, Limits, isolation_available, mentions_out_of_memory
from .remote import resolve
from .results import (
    ISOLATION_NAMESPACES,
    ISOLATION_PROCESS_ONLY,
    NOT_RUN_PREFIX,
    CaseResult,
    Outcome,
    QuestionResult,
    Status,
    SubmissionResult,
)
from .sandbox import SandboxedNotebook, SandboxFailure
from .submissions import MAX_NOTEBOOK_BYTES
from .testfiles import load_questions

MAX_RESTARTS = 3


def read_submission(path: Path, target: Path, deadline: float, limits: Limits):
    """Check the submission at `path` and write the minimal notebook the sandbox runs to `target`.
    Returns None, or the `Outcome` that stops it. The reading happens in a child process under the
    submission's deadline and memory cap (see `notebook_shape`): the judge never parses it."""
    try:
        size = path.stat().st_size
    except OSError as error:
        return Outcome(Status.NOT_READABLE, str(error.strerror or error))
    if size > MAX_NOTEBOOK_BYTES:
        return Outcome(Status.NOT_GRADED, f"the notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
    problem = notebook_shape.read_notebook(path, target, deadline, limits.memory_mb)
    if problem is not None and problem.status is Status.TIMEOUT:
        return Outcome.timeout(limits.timeout_s)
    return problem


def sandbox_outcome(failure: SandboxFailure) -> Outcome:
    """The outcome a sandbox failure stands for, read from its status line (the detail, such as the
    time limit, is in the words; code that only needs the kind reads `failure.kind`)."""
    return Outcome.from_text(failure.status)


class Session:
    """A sandboxed submission that is restarted when a test crashes or hangs it."""

    def __init__(self, notebook, limits, gpu, zygote=None, deadline=None):
        self.notebook, self.limits, self.gpu, self.zygote = notebook, limits, gpu, zygote
        self.box = None
        self.ready = None
        self.restarts = 0
        self.deadline = time.monotonic() + limits.timeout_s if deadline is None else deadline

    def open(self):
        """Start the sandbox and run the notebook; returns the worker's ready message."""
        self.box = SandboxedNotebook(self.notebook, self.limits, gpu=self.gpu, deadline=self.deadline,
                                     zygote=self.zygote)
        self.box.start()
        self.ready = self.box.wait_ready()
        return self.ready

    def request(self, message):
        """Send one request to the notebook's worker and return its reply."""
        return self.box.request(message)

    def close(self):
        """Stop the sandbox, if one is running."""
        if self.box is not None:
            self.box.close()

    def restart(self):
        """A fresh sandbox after a test stopped the last one (counted against `MAX_RESTARTS`)."""
        self.close()
        self.restarts += 1
        return self.open()


def grade(assignment: str, notebook: Path, limits: Limits, gpu=None, gpu_policy=settings.DEFAULT_GPU_POLICY,
          zygote=None, accept_review=False) -> dict:
    """Grade one notebook; returns its result as saved (`SubmissionResult.to_dict`).
    `zygote`: address of a warm `zygote_client.ZygoteServer` (faster start).
    `accept_review`: a TA reviewed this submission and trusts its measurements."""
    # Under the judge a check that cannot run here (no GPU) reports a skip, and the points policy
    # is applied in `_finish`, rather than the shipped policy deciding inside the check.
    reports_skips, core.JUDGE_REPORTS_SKIPS = core.JUDGE_REPORTS_SKIPS, True
    try:
        return _grade(assignment, notebook, limits, gpu, gpu_policy, zygote, accept_review)
    finally:
        core.JUDGE_REPORTS_SKIPS = reports_skips


def _grade(assignment, notebook, limits, gpu, gpu_policy, zygote, accept_review) -> dict:
    spec = assignments.get(assignment)
    questions = load_questions(spec.zip_path)
    gpu = assignments.cuda_available() if gpu is None else gpu
    result = SubmissionResult(
        assignment=assignment,
        notebook=str(notebook),
        isolation=ISOLATION_NAMESPACES if isolation_available() else ISOLATION_PROCESS_ONLY,
        device="cuda" if gpu else "cpu",
        questions={q.name: QuestionResult(0.0, q.possible) for q in questions},
        gpu_policy=gpu_policy,
        output_tail="",
        integrity=integrity.empty_record(accept_review),
    )
    started = time.monotonic()
    deadline = started + limits.timeout_s  # reading the file counts against it too
    with tempfile.TemporaryDirectory(prefix="seqmod-judge-") as scratch:
        minimal = Path(scratch) / "submission.ipynb"
        problem = read_submission(Path(notebook), minimal, deadline, limits)
        if problem:
            result.outcome = problem
            result.mark_not_run(questions, problem)
            return _finish(result, started)
        try:  # the minimal notebook holds only cell sources, so the scan is cheap
            result.integrity["hits"] = integrity.scan(json.loads(minimal.read_text()))
        except Exception:  # noqa: BLE001 - the scan is evidence for a TA, never a reason to fail
            pass
        trace.TRUST_MEASUREMENTS = bool(accept_review)
        session = Session(minimal, limits, gpu, zygote, deadline)
        try:
            ready = session.open()
            result.cell_errors = ready.get("cell_errors", [])[:20]
            result.notebook_seconds = ready.get("seconds")
            _run_cases(session, questions, result)
        except SandboxFailure as failure:
            result.outcome = sandbox_outcome(failure)
            result.mark_not_run(questions, result.outcome)
        finally:
            trace.TRUST_MEASUREMENTS = False
            if session.box is not None:
                result.output_tail = session.box.output_text()[-4000:]
            session.close()
    return _finish(result, started)


def _run_cases(session, questions, result: SubmissionResult):
    for question in questions:
        entry = result.questions[question.name]
        for case in question.cases:
            record = CaseResult(case.name, case.points, case.hidden)
            case_started = time.monotonic()
            trace.EVIDENCE.clear()
            try:
                case.func(**resolve(session, case.params))
                record.passed, record.message = True, "passed"
            except MeasurementVoided as voided:
                record.message, record.voided = str(voided), True
                result.integrity["voided"].append({"test": case.name, "reason": voided.reason})
            except SkipCheck as skip:
                record.skipped, record.message = True, f"{NOT_RUN_PREFIX}{skip}"
            except (CheckFailure, AssertionError) as failure:
                record.message = str(failure) or "assertion failed"
            except StudentCodeError as error:
                record.message = f"your code raised an error: {error}"
            except SandboxFailure as failure:
                record.message = f"this test stopped the notebook: {failure.status}"
                result.incidents.append(f"{case.name}: {failure.status}")
                if failure.kind is FailureKind.TIMEOUT or session.restarts >= MAX_RESTARTS:
                    entry.cases.append(record)
                    raise
                session.restart()
            except Exception as error:  # noqa: BLE001 - a check that breaks on odd output fails
                record.message = f"could not check the result ({type(error).__name__}: {error})"
                result.grader_errors.append(traceback.format_exc()[-2000:])
            result.integrity["notes"] += [{"test": case.name, "note": n} for n in dict.fromkeys(trace.EVIDENCE)]
            record.seconds = round(time.monotonic() - case_started, 3)
            entry.cases.append(record)
            if record.passed:
                entry.score += case.points


def _finish(result: SubmissionResult, started) -> dict:
    if result.gpu_policy == settings.GPU_EXCLUDE:
        for q in result.questions.values():
            q.possible -= sum(c.points for c in q.cases if c.skipped)
    notes = []
    if any(mentions_out_of_memory(e["error"]) for e in result.cell_errors):
        notes.append("a cell hit the memory limit")
    if "more bytes of output dropped" in (result.output_tail or ""):
        notes.append("output truncated")
    if result.cell_errors:
        notes.append(f"{len(result.cell_errors)} cell(s) raised errors")
    record = integrity.finish(result.integrity)
    if record["accepted"]:
        notes.append("integrity review accepted: measurements trusted")
    if result.outcome.status is Status.COMPLETED:
        result.outcome = Outcome.completed_with(notes)
    if record["voided"] and not record["accepted"] and result.outcome.completed:
        result.outcome = Outcome(Status.INTEGRITY_REVIEW, integrity.reason(record))
    result.total = sum(q.score for q in result.questions.values())
    result.possible = sum(q.possible for q in result.questions.values())
    result.seconds = round(time.monotonic() - started, 2)
    result.skipped = [c.name for c in result.all_cases() if c.skipped]
    return result.to_dict()
