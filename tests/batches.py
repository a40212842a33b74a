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
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from autograder.assignments import ROOT
from tests import budgets, notebooks

NICENESS = 10  # a lower priority, not the lowest: the batches still progress beside busy tests
PR_SET_PDEATHSIG = 1
WANTED = {}  # {assignment: {label: () -> a notebook (NotebookNode) or a path to one}}
_run = {}  # "folder", "process", "thread", and then "results" or "error"


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
    # A row's time limit is wall time, and a niced batch beside two busy tests gets little CPU:
    # generous, scaled by the load measured now. Nothing in these batches is meant to time out.
    command = [sys.executable, "-m", "tests.batches", str(folder), str(workers), str(budgets.budget(600))]
    _run["process"] = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=_lower_priority_and_die_with_the_suite)
    _run["thread"] = threading.Thread(target=_wait_for_the_grading, args=(folder, command), daemon=True)
    _run["thread"].start()


def results(workers: int) -> dict:
    """{assignment: {label: result}}: waits for the background grading (starts it if need be)."""
    start(workers)
    _run["thread"].join()
    if "error" in _run:
        raise RuntimeError(f"grading the shared batches failed:\n{_run['error']}")
    return _run["results"]


def clean_up():
    """Once the session is over: stop the grading if it still runs (an interrupted session) and
    remove the batches' folder."""
    process = _run.get("process")
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)  # the grading, its judges and its zygote
        process.wait()
    if "thread" in _run:
        _run["thread"].join()
    if "folder" in _run:
        shutil.rmtree(_run["folder"], ignore_errors=True)


def _lower_priority_and_die_with_the_suite():
    os.nice(NICENESS)
    if sys.platform == "linux":  # killed with the test session, however it ends
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _wait_for_the_grading(folder: Path, command: list):
    process = _run["process"]
    errors = process.communicate()[1]
    if process.returncode != 0:
        _run["error"] = f"{' '.join(command)} exited with {process.returncode}:\n{errors[-4000:]}"
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
