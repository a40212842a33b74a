"""The notebook's last cell: check the work is complete, then write the file to hand in."""
import ast
import inspect
import json
import zipfile
from pathlib import Path

from .notebook import grading_mode


class NotReady(Exception):
    """The notebook is not ready to submit; the message says what to do."""


def _is_stub(fn) -> bool:
    try:
        tree = ast.parse(inspect.getsource(fn).strip())
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef):
        return False
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # a docstring
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                             and s.value.value is Ellipsis) for s in body)


def check_functions(graded, namespace):
    for name in graded:
        fn = namespace.get(name)
        if fn is None:
            raise NotReady(f"`{name}` is not defined. Run every cell from the top, then submit again.")
        if callable(fn) and _is_stub(fn):
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
        raise NotReady(f"code cell {first} of the saved notebook was never run. Use Kernel > Restart "
                       "and run all, save the notebook, then run this cell.")
    for i, (before, after) in enumerate(zip(counts, counts[1:]), start=2):
        if after != before + 1:
            raise NotReady(f"code cell {i} ran out of order (execution count {after} after {before}). "
                           "Use Kernel > Restart and run all, save the notebook, then run this cell.")


def _load_notebook(path: Path) -> dict:
    try:
        from google.colab import _message  # type: ignore
        return _message.blocking_request("get_ipynb", request="", timeout_sec=60)["ipynb"]
    except ImportError:
        pass
    if not path.exists():
        raise NotReady(f"could not find {path.name} next to this notebook: save it under that name.")
    return json.loads(path.read_text(encoding="utf-8"))


def make_submission(assignment: str, graded, namespace, notebook_path=None) -> Path:
    """Refuse when the work is incomplete; otherwise write `<assignment>_submission.zip`."""
    if grading_mode():
        return None
    path = Path(notebook_path or f"{assignment}.ipynb")
    try:
        check_functions(graded, namespace)
        nb = _load_notebook(path)
        check_run_order(nb)
    except NotReady as reason:
        print(f"Not submitted: {reason}")
        return None
    target = Path(f"{assignment}_submission.zip")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{assignment}.ipynb", json.dumps(nb, indent=1))
    print(f"Wrote {target.resolve()}\nUpload this zip file as your submission for '{assignment}'.")
    try:
        from google.colab import files  # type: ignore
        files.download(str(target))
    except ImportError:
        pass
    return target
