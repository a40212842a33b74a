"""The shape of a grading result: a submission's, a question's and a test case's.

Results travel as JSON (the judge's pool returns them, `DIR/results/*.json` caches them), so each
dataclass reads and writes exactly the dict the grader has always saved. The grading status is an
`Outcome`: a `Status` that code branches on plus a detail, and the line a TA reads ("timeout after
120 s", "Completed (2 cell(s) raised errors)") is computed from the two. The saved files keep only
that line, so `Outcome.from_text` is the one place that reads a status's wording back.
"""
from dataclasses import dataclass, field
from enum import Enum

ISOLATION_NAMESPACES = "namespaces"
ISOLATION_PROCESS_ONLY = "process only (namespaces unavailable)"  # see reduced_isolation
_PROCESS_ONLY_WORDS = "process only"
NOT_RUN_PREFIX = "not run: "


class Status(Enum):
    """How grading a submission ended. The value is (prefix, suffix) of the status line around its
    detail; FAILED has neither, its detail is the whole line."""

    COMPLETED = ("Completed", "")  # no detail
    COMPLETED_WITH_NOTES = ("Completed (", ")")  # detail: "; "-joined notes
    INTEGRITY_REVIEW = ("integrity review: ", "")  # measurements voided, a TA must look
    TIMEOUT = ("timeout after ", " s")  # detail: the submission's time limit in seconds
    CALL_TIMEOUT = ("a call into the notebook did not return within ", " s")  # detail: seconds
    MEMORY = ("killed: memory limit ", " MB")  # detail: the memory cap in MB
    CRASHED = ("crashed: ", "")  # the notebook's process died of a signal
    GRADER_ERROR = ("grader error: ", "")  # not the submission's doing: regraded on the next run
    NOT_A_NOTEBOOK = ("not a notebook: ", "")
    NOT_READABLE = ("not readable: ", "")
    NOT_GRADED = ("not graded: ", "")  # refused before running: too large, too many zip members...
    FAILED = ("", "")  # any other reason the submission could not be graded to the end

    @property
    def prefix(self) -> str:
        """What the status line starts with."""
        return self.value[0]

    @property
    def suffix(self) -> str:
        """What the status line ends with."""
        return self.value[1]


_PARSE_ORDER = [s for s in Status if s not in (Status.COMPLETED, Status.FAILED)]


@dataclass(frozen=True)
class Outcome:
    """A `Status` and its detail; `text` is the status line a TA reads."""

    status: Status
    detail: str = ""

    @property
    def text(self) -> str:
        """The status line a TA reads."""
        return self.status.prefix + self.detail + self.status.suffix

    @property
    def completed(self) -> bool:
        """Every test ran (with or without notes for the TA)."""
        return self.status in (Status.COMPLETED, Status.COMPLETED_WITH_NOTES)

    @classmethod
    def completed_with(cls, notes) -> "Outcome":
        """Completed, with notes for the TA when there are any."""
        notes = list(notes)
        return cls(Status.COMPLETED_WITH_NOTES, "; ".join(notes)) if notes else cls(Status.COMPLETED)

    @classmethod
    def timeout(cls, seconds: float) -> "Outcome":
        """The submission ran out of its time limit (`seconds`)."""
        return cls(Status.TIMEOUT, f"{seconds:g}")

    @classmethod
    def grader_error(cls, what: str) -> "Outcome":
        """Grading broke for a reason that is not the submission's (regraded next run)."""
        return cls(Status.GRADER_ERROR, what)

    @classmethod
    def from_text(cls, text: str) -> "Outcome":
        """The outcome a saved status line (or a sandbox's failure text) stands for.
        `Outcome.from_text(line).text == line` for every line."""
        if text == Status.COMPLETED.prefix:
            return cls(Status.COMPLETED)
        for status in _PARSE_ORDER:
            end = len(text) - len(status.suffix)
            if text.startswith(status.prefix) and text.endswith(status.suffix) and end >= len(status.prefix):
                return cls(status, text[len(status.prefix):end])
        return cls(Status.FAILED, text)


def outcome_of(result: dict) -> Outcome:
    """The outcome of a result dict (a row without a status completed, as always)."""
    return Outcome.from_text(str(result.get("status", Status.COMPLETED.prefix)))


def reduced_isolation(result: dict) -> bool:
    """Whether the submission ran without namespaces (its `isolation` line says "process only")."""
    return str(result.get("isolation", "")).startswith(_PROCESS_ONLY_WORDS)


@dataclass
class CaseResult:
    """One test case of one submission. `reached` is False for a case that did not run because
    grading the submission stopped before it (see `not_run`); a CUDA test that grading reached but
    could not run for want of a GPU is `skipped` instead."""

    name: str
    points: float
    hidden: bool
    passed: bool = False
    message: str = ""
    skipped: bool = False
    voided: bool = False  # its measurement could not be trusted (see `integrity`)
    seconds: float | None = None
    reached: bool = True

    @classmethod
    def not_run(cls, case, outcome: Outcome) -> "CaseResult":
        """The one record of a test that did not run because of `outcome` (`case`: a
        `testfiles` case, with name, points and hidden)."""
        return cls(case.name, case.points, case.hidden, passed=False, message=NOT_RUN_PREFIX + outcome.text,
                   reached=False)

    def to_dict(self) -> dict:
        """The case as saved in a result file."""
        record = {"name": self.name, "points": self.points, "hidden": self.hidden, "passed": self.passed}
        if self.skipped:
            record["skipped"] = True
        record["message"] = self.message
        if self.voided:
            record["voided"] = True
        if self.seconds is not None:
            record["seconds"] = self.seconds
        return record

    @classmethod
    def from_dict(cls, record: dict) -> "CaseResult":
        """A case read back from a result file."""
        skipped = bool(record.get("skipped", False))
        message = str(record.get("message", ""))
        return cls(record["name"], record["points"], record["hidden"], passed=bool(record.get("passed")),
                   message=message, skipped=skipped, voided=bool(record.get("voided", False)),
                   seconds=record.get("seconds"), reached=skipped or not message.startswith(NOT_RUN_PREFIX))


@dataclass
class QuestionResult:
    """A question's score out of `possible`, and its cases."""

    score: float
    possible: float
    cases: list = field(default_factory=list)  # [CaseResult]

    def to_dict(self) -> dict:
        """The question as saved in a result file."""
        return {"score": self.score, "possible": self.possible, "cases": [c.to_dict() for c in self.cases]}

    @classmethod
    def from_dict(cls, data: dict) -> "QuestionResult":
        """A question read back from a result file."""
        return cls(data["score"], data["possible"], [CaseResult.from_dict(c) for c in data["cases"]])


# Keys of the saved dict in the order they are written; None fields are left out (as they always
# were: a row that never reached a judge has no `notebook`, `isolation`, `seconds`...).
_OPTIONAL_BEFORE_TOTAL = ("notebook", "isolation", "device")
_KNOWN_KEYS = {"assignment", "notebook", "isolation", "device", "questions", "status", "gpu_policy", "cell_errors",
               "output_tail", "integrity", "notebook_seconds", "incidents", "grader_errors", "total", "possible",
               "seconds", "skipped", "started_at", "returned_at", "file", "source", "key", "reused", "notes"}


@dataclass
class SubmissionResult:
    """A submission's result. `to_dict()` is what is saved and handed to the reports."""

    assignment: str
    questions: dict  # {question name: QuestionResult}
    outcome: Outcome = field(default_factory=lambda: Outcome(Status.COMPLETED))
    gpu_policy: str | None = None
    total: float = 0.0
    possible: float = 0.0
    cell_errors: list = field(default_factory=list)  # [{cell, error}] from running the notebook
    skipped: list = field(default_factory=list)  # names of the CUDA tests skipped for want of a GPU
    notebook: str | None = None  # the file the judge read
    isolation: str | None = None  # ISOLATION_NAMESPACES or ISOLATION_PROCESS_ONLY
    device: str | None = None
    output_tail: str | None = None
    integrity: dict | None = None  # see integrity.empty_record
    notebook_seconds: float | None = None
    incidents: list = field(default_factory=list)  # "test: why" for each test that stopped the notebook
    grader_errors: list = field(default_factory=list)  # tracebacks of checks that broke
    seconds: float | None = None
    started_at: float | None = None  # when a judge took it up (time.time())
    returned_at: float | None = None
    file: str | None = None  # the label the TA sees
    source: str | None = None  # the input file's identity
    key: str | None = None  # the cache key it was graded under
    reused: bool | None = None
    notes: list = field(default_factory=list)  # about the input file (e.g. which notebook of a zip)
    extra: dict = field(default_factory=dict)  # keys this module does not know, kept as they came

    @classmethod
    def unrunnable(cls, assignment: str, questions, outcome: Outcome, gpu_policy=None) -> "SubmissionResult":
        """The result of a submission none of whose tests ran (`questions`: `testfiles` questions)."""
        result = cls(assignment, {q.name: QuestionResult(0.0, q.possible) for q in questions}, outcome,
                     gpu_policy=gpu_policy, possible=sum(q.possible for q in questions))
        result.mark_not_run(questions, outcome)
        return result

    def mark_not_run(self, questions, outcome: Outcome):
        """Record every case of `questions` without a record yet as not run because of `outcome`."""
        for question in questions:
            entry = self.questions[question.name]
            done = {c.name for c in entry.cases}
            entry.cases += [CaseResult.not_run(case, outcome) for case in question.cases if case.name not in done]

    def all_cases(self):
        """Every test case of every question, in order."""
        return [case for q in self.questions.values() for case in q.cases]

    def to_dict(self) -> dict:
        """The result as saved (`DIR/results/*.json`) and returned by the judge."""
        data = {"assignment": self.assignment}
        data.update(self._present(*_OPTIONAL_BEFORE_TOTAL))
        data["questions"] = {name: q.to_dict() for name, q in self.questions.items()}
        data["status"] = self.outcome.text
        data["gpu_policy"] = self.gpu_policy
        data["cell_errors"] = self.cell_errors
        data.update(self._present("output_tail", "integrity", "notebook_seconds"))
        data.update({name: getattr(self, name) for name in ("incidents", "grader_errors") if getattr(self, name)})
        data["total"] = self.total
        data["possible"] = self.possible
        data.update(self._present("seconds"))
        data["skipped"] = self.skipped
        data.update(self._present("started_at", "returned_at", "file", "source", "key", "reused"))
        if self.notes:
            data["notes"] = self.notes
        data.update(self.extra)
        return data

    def _present(self, *names) -> dict:
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    @classmethod
    def from_dict(cls, data: dict) -> "SubmissionResult":
        """A result read back from a saved file."""
        known = {name: data[name] for name in _KNOWN_KEYS - {"questions", "status"} if name in data}
        for name in ("incidents", "grader_errors", "notes", "cell_errors", "skipped"):
            known[name] = list(known.get(name) or [])
        return cls(questions={name: QuestionResult.from_dict(q) for name, q in data["questions"].items()},
                   outcome=outcome_of(data), extra={k: v for k, v in data.items() if k not in _KNOWN_KEYS},
                   **known)
