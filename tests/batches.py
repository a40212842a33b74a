"""One graded batch per assignment for the whole test session, shared by the tests that need it.

Test modules say, when they are imported, which notebooks they need graded (`want`). When the
first test that is not a browser test starts (tests/conftest.py `pytest_runtest_setup`), `start`
writes all the wanted notebooks and grades them, one parallel batch per assignment as a TA would
run them, in a background process at a lower CPU priority (`nice`): the other tests run
meanwhile, and the batches mostly take the CPU those leave idle (`otter assign`, kernels and
subprocesses that wait on each other). The modules that read the results run last (conftest.py);
the `graded_batches` fixture waits for `results`. A notebook several modules want (the blank
student notebook) is graded once.

`python -m tests.batches FOLDER WORKERS TIMEOUT` is that background process: it grades every
`FOLDER/<assignment>/batch` and writes the rows to `FOLDER/<assignment>/rows.json`.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests import budgets, notebooks

ROOT = Path(__file__).resolve().parent.parent
NICENESS = 10  # a lower priority, not the lowest: the batches still progress beside busy tests
WANTED = {}  # {assignment: {label: () -> a notebook (NotebookNode) or a path to one}}
_run = {}  # "thread", "folder", and then "results" or "error"


def want(assignment: str, label: str, make):
    """Have `make()` graded as `<label>.ipynb` in `assignment`'s shared batch."""
    WANTED.setdefault(assignment, {}).setdefault(label, make)


def start(workers: int):
    """Write the wanted notebooks and begin grading them in the background (once per session)."""
    if "thread" in _run:
        return
    folder = _run["folder"] = Path(tempfile.mkdtemp(prefix="seqmod-batches-"))
    for assignment, wanted in WANTED.items():
        batch = folder / assignment / "batch"
        batch.mkdir(parents=True)
        for label, make in wanted.items():
            made = make()
            if isinstance(made, Path):
                (batch / f"{label}.ipynb").write_bytes(made.read_bytes())
            else:
                notebooks.write(made, batch / f"{label}.ipynb")
    _run["thread"] = threading.Thread(target=_grade_in_background, args=(folder, workers), daemon=True)
    _run["thread"].start()


def results(workers: int) -> dict:
    """{assignment: {label: result}}: waits for the background grading (starts it if need be)."""
    start(workers)
    _run["thread"].join()
    if "error" in _run:
        raise RuntimeError(f"grading the shared batches failed:\n{_run['error']}")
    return _run["results"]


def clean_up():
    """Remove the batches' folder once the session is over (left while an interrupted session's
    grading still runs)."""
    if "folder" in _run and not _run["thread"].is_alive():
        shutil.rmtree(_run["folder"], ignore_errors=True)


def _grade_in_background(folder: Path, workers: int):
    # A row's time limit is wall time, and a niced batch beside two busy tests gets little CPU:
    # generous, scaled by the load measured now. Nothing in these batches is meant to time out.
    timeout = budgets.budget(600)
    command = [sys.executable, "-m", "tests.batches", str(folder), str(workers), str(timeout)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          preexec_fn=lambda: os.nice(NICENESS))
    if done.returncode != 0:
        _run["error"] = f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr[-4000:]}"
        return
    _run["results"] = {assignment: json.loads((folder / assignment / "rows.json").read_text())
                       for assignment in WANTED}


def main(folder: Path, workers: int, timeout_s: int):
    from autograder.grade import grade_all
    from autograder.limits import Limits
    for batch in sorted(folder.glob("*/batch")):
        rows = grade_all(batch.parent.name, [batch], batch.parent / "out", workers=workers,
                         limits=Limits(timeout_s=timeout_s), force=True)
        by_label = {r["file"].removesuffix(".ipynb"): r for r in rows}
        (batch.parent / "rows.json").write_text(json.dumps(by_label))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
