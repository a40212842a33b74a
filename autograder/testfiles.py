"""Read an assignment's tests (otter's exception-based format) out of its autograder zip."""
import inspect
import posixpath
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class test_case:  # noqa: N801 - same name and signature as otter's decorator
    """Stands in for `otter.test_files.test_case` when reading test files: importing otter
    costs seconds per submission, and only this decorator's arguments are needed."""

    def __init__(self, name=None, points=None, hidden=False, success_message=None, failure_message=None):
        self.name, self.points, self.hidden = name, points, hidden
        self.test_func = None

    def __call__(self, test_func):
        self.test_func = test_func
        return self

    def _get_func_params(self):
        return list(inspect.signature(self.test_func).parameters)


OTTER_IMPORT = "from otter.test_files import test_case"


@dataclass
class Case:
    """One otter test case: its question, name, points, visibility and test function."""

    question: str
    name: str
    points: float
    hidden: bool
    func: Callable
    params: list = field(default_factory=list)


@dataclass
class Question:
    """One question's test cases, in the order its test file defines them."""

    name: str
    cases: list

    @property
    def possible(self) -> float:
        """The question's points: the sum of its cases' points."""
        return sum(c.points for c in self.cases)


def load_questions_from_sources(sources: dict) -> list:
    """The questions of the test files in `sources` ({q1.py: text}), in file-name order."""
    questions = []
    for filename in sorted(sources):
        namespace = {"__name__": f"tests.{Path(filename).stem}", "test_case": test_case}
        source = sources[filename].replace(OTTER_IMPORT, "", 1)
        exec(compile(source, filename, "exec"), namespace)
        name = namespace.get("name", Path(filename).stem)
        cases = []
        for value in list(namespace.values()):
            if isinstance(value, test_case):
                if value.points is None:
                    raise ValueError(f"{filename}: every test case needs explicit points")
                cases.append(Case(name, value.name or value.test_func.__name__, float(value.points),
                                  bool(value.hidden), value.test_func, value._get_func_params()))
        questions.append(Question(name, cases))
    return questions


def read_test_sources(zip_file) -> dict:
    """{q1.py: text} for every test file under `tests/` of an autograder zip (a path, or a file
    object such as `io.BytesIO(data)`)."""
    with zipfile.ZipFile(zip_file) as archive:
        return {posixpath.basename(n): archive.read(n).decode()
                for n in sorted(archive.namelist()) if n.startswith("tests/") and n.endswith(".py")}


def load_questions(zip_file) -> list:
    """The questions and test cases of an autograder zip (a path or a file object)."""
    return load_questions_from_sources(read_test_sources(zip_file))
