"""The notebook's last cell: check the work is complete, then write the file to hand in."""
import json
import os
import zipfile
from pathlib import Path

from .notebook import grading_mode, is_stub

RUN_ALL = ("Kernel > Restart Kernel and Run All Cells… (Colab: Runtime > Restart session and run all), "
           "save the notebook, then run this cell")


class NotReady(Exception):
    """The notebook is not ready to submit; the message says what to do."""


def check_functions(graded, namespace):
    """Raise NotReady when a graded function is missing or still a stub in `namespace`."""
    for name in graded:
        fn = namespace.get(name)
        if fn is None:
            raise NotReady(f"`{name}` is not defined. Run every cell from the top, then submit again.")
        if callable(fn) and is_stub(fn):
            raise NotReady(f"`{name}` is still a stub (its body is `...`). Implement it, or submit "
                           "knowing that its tests will score zero by removing it from this check.")


def check_run_order(nb: dict):
    """Every code cell before this one ran once, in order, in one kernel session: 1, 2, 3, ..."""
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"
            and "".join(c.get("source", "")).strip()]
    if code and "make_submission" in "".join(code[-1].get("source", "")):
        code = code[:-1]
    counts = [c.get("execution_count") for c in code]
    if any(n is None for n in counts):
        first = counts.index(None) + 1
        raise NotReady(f"code cell {first} of the saved notebook was never run. Use {RUN_ALL}.")
    for i, (before, after) in enumerate(zip(counts, counts[1:]), start=2):
        if after != before + 1:
            raise NotReady(f"code cell {i} ran out of order (execution count {after} after {before}). "
                           f"Use {RUN_ALL}.")


def check_saved_since_run(nb: dict, current_count):
    """The saved file holds this kernel's last run: its highest execution count is the count of the
    cell that ran just before this one. Otherwise the run happened but was not saved (the usual case
    right after Restart and Run All), or cells ran after the last save."""
    if current_count is None:
        return
    counts = [c.get("execution_count") for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    saved = max((n for n in counts if isinstance(n, int)), default=None)
    if saved != current_count - 1:
        raise NotReady("the notebook file is older than this run: save it (File > Save Notebook, Ctrl+S or "
                       "Cmd+S), then run this cell again.")


def _current_execution_count():
    """The execution count of the cell running now, in an IPython kernel; None elsewhere."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    count = getattr(shell, "execution_count", None) if shell is not None else None
    return count - 1 if isinstance(count, int) else None  # IPython counts the running cell before running it


def _on_colab() -> bool:
    from importlib.util import find_spec
    return find_spec("google") is not None and find_spec("google.colab") is not None


def _load_notebook(path: Path) -> dict:
    if _on_colab():  # Colab hands over the live notebook: nothing to save first
        from google.colab import _message  # type: ignore
        return _message.blocking_request("get_ipynb", request="", timeout_sec=60)["ipynb"]
    if not path.exists():
        raise NotReady(f"could not find {path.name} next to this notebook: save it under that name.")
    return json.loads(path.read_text(encoding="utf-8"))


def _notebook_path(assignment: str, notebook_path) -> Path:
    """The given path; else the notebook this kernel was started for (Jupyter names it in
    JPY_SESSION_NAME, so a renamed copy is found); else `<assignment>.ipynb` here."""
    if notebook_path:
        return Path(notebook_path)
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb") and Path(session).is_file():
        return Path(session)
    return Path(f"{assignment}.ipynb")


def make_submission(assignment: str, graded, namespace, notebook_path=None) -> None:
    """Refuse when the work is incomplete; otherwise write `<assignment>_submission.zip`.
    Prints what happened (and returns nothing, so the cell shows no stray value)."""
    if grading_mode():
        return
    path = _notebook_path(assignment, notebook_path)
    try:
        check_functions(graded, namespace)
        nb = _load_notebook(path)
        if not _on_colab():
            check_saved_since_run(nb, _current_execution_count())
        check_run_order(nb)
    except NotReady as reason:
        print(f"Not submitted: {reason}")
        return
    target = Path(f"{assignment}_submission.zip")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{assignment}.ipynb", json.dumps(nb, indent=1))
    print(f"Wrote {target.resolve()}\nUpload this zip file as your submission for '{assignment}'.")
    if _on_colab():
        from google.colab import files  # type: ignore
        files.download(str(target))
