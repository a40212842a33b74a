"""One graded batch per assignment for the whole test session, shared by the tests that need it.

Test modules say, when they are imported, which notebooks they need graded (`want`). Once
collection is over (tests/conftest.py `pytest_collection_finish`), `start` grades all the wanted
notebooks of each assignment, one parallel batch per assignment as a TA would run them, in a
background thread: the tests that come first (the browser and the build, which leave a core idle
much of the time) run meanwhile. The `graded_batches` fixture waits for `results`. A notebook
several modules want (the blank student notebook) is graded once.
"""
import shutil
import tempfile
import threading
from pathlib import Path

from autograder.grade import grade_all
from autograder.limits import Limits
from tests import budgets, notebooks

WANTED = {}  # {assignment: {label: () -> a notebook (NotebookNode) or a path to one}}
_run = {}  # "thread", "folder", and then "results" or "error"


def want(assignment: str, label: str, make):
    """Have `make()` graded as `<label>.ipynb` in `assignment`'s shared batch."""
    WANTED.setdefault(assignment, {}).setdefault(label, make)


def start(workers: int):
    """Begin grading every wanted notebook in a background thread (once per session)."""
    if "thread" in _run:
        return
    _run["folder"] = Path(tempfile.mkdtemp(prefix="seqmod-batches-"))
    _run["thread"] = threading.Thread(target=_grade_all_wanted, args=(_run["folder"], workers), daemon=True)
    _run["thread"].start()


def results(workers: int) -> dict:
    """{assignment: {label: result}}: waits for the background grading (starts it if need be)."""
    start(workers)
    _run["thread"].join()
    if "error" in _run:
        raise RuntimeError("grading the shared batches failed") from _run["error"]
    return _run["results"]


def clean_up():
    """Remove the batches' folder once the session is over (left while an interrupted session's
    grading still runs: it ends with the interpreter)."""
    if "folder" in _run and not _run["thread"].is_alive():
        shutil.rmtree(_run["folder"], ignore_errors=True)


def _grade_all_wanted(folder: Path, workers: int):
    try:
        # Measured now, while the first tests run beside it: a contended start gets a larger budget.
        limits = Limits(timeout_s=budgets.budget(240))
        graded = {}
        for assignment, wanted in WANTED.items():
            batch = folder / assignment / "batch"
            batch.mkdir(parents=True)
            for label, make in wanted.items():
                made = make()
                if isinstance(made, Path):
                    (batch / f"{label}.ipynb").write_bytes(made.read_bytes())
                else:
                    notebooks.write(made, batch / f"{label}.ipynb")
            rows = grade_all(assignment, [batch], folder / assignment / "out", workers=workers, limits=limits,
                             force=True)
            by_file = {r["file"]: r for r in rows}
            graded[assignment] = {label: by_file[f"{label}.ipynb"] for label in wanted}
        _run["results"] = graded
    except BaseException as error:  # noqa: BLE001 - raised again, in the test that asks for the results
        _run["error"] = error
