"""Students get the public checks (notebooks/course_public.zip) but no function in them may pass a
graded question: a function there that computes a right answer could be copied in as one.

Every function in every Python module of the bundle is handed, as the student's function, to the
hidden tests of each graded function whose call it can take; at least one hidden test must fail
it. The same probe run over the private references finds their right answers, so it can tell.
"""
import ast
import importlib
import inspect
import zipfile

import nbformat
import pytest

from autograder import assignments
from autograder.assignments import ROOT
from autograder.checks import core

BUNDLE = ROOT / "notebooks" / "course_public.zip"


def bundle_modules() -> list:
    """Module names of the bundle's Python files. Each must equal the repository's copy, so that
    importing the repository's module inspects what students get; the build writes its own
    package `__init__.py` files, which must define nothing."""
    names = []
    with zipfile.ZipFile(BUNDLE) as archive:
        for member in archive.namelist():
            if not (member.startswith("autograder/") and member.endswith(".py")):
                continue
            text = archive.read(member)
            if member.endswith("__init__.py"):
                body = ast.parse(text).body
                assert all(isinstance(node, ast.Expr) for node in body), f"{member} in the bundle defines code"
                continue
            assert text == (ROOT / member).read_bytes(), \
                f"{member} in the bundle is stale: run `python -m autograder build`"
            names.append(member[:-3].replace("/", "."))
    assert names, "the bundle holds no Python module"
    return names


def graded_arities(assignment: str) -> dict:
    """{graded function: its number of required positional parameters}, from the master notebook's
    top-level definitions of the functions the hidden tests take."""
    hidden = importlib.import_module(f"autograder.hidden.{assignment}")
    taken = {p for _, check in hidden_checks(hidden) for p in inspect.signature(check).parameters}
    arities = {}
    for cell in nbformat.read(assignments.Assignment(assignment).master, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in taken:
                positional = node.args.posonlyargs + node.args.args
                arities[node.name] = len(positional) - len(node.args.defaults)
    return arities


def hidden_checks(hidden) -> list:
    """(name, check) for the hidden tests: public functions whose parameters are graded functions."""
    checks = []
    for name, fn in inspect.getmembers(hidden, inspect.isfunction):
        if fn.__module__ != hidden.__name__ or name.startswith("_"):
            continue
        params = list(inspect.signature(fn).parameters)
        if params and all(p not in {"gen", "n", "N", "T", "D", "H"} for p in params):
            checks.append((name, fn))
    return checks


def functions_of(module_name: str) -> list:
    module = importlib.import_module(module_name)
    return [(f"{module_name}.{name}", fn) for name, fn in inspect.getmembers(module, inspect.isfunction)
            if fn.__module__ == module_name]


def takes(fn, arity: int) -> bool:
    try:
        inspect.signature(fn).bind(*range(arity))
    except (TypeError, ValueError):
        return False
    return True


def answers_among(functions, assignment: str) -> list:
    """(function, graded name) for each function that passes every hidden test of that name that
    can run here (CUDA-only tests are left out on a machine without a GPU)."""
    hidden = importlib.import_module(f"autograder.hidden.{assignment}")
    checks = [(name, check) for name, check in hidden_checks(hidden) if len(inspect.signature(check).parameters) == 1]
    found = []
    for graded, arity in graded_arities(assignment).items():
        own = [check for _, check in checks if graded in inspect.signature(check).parameters]
        for label, fn in functions:
            if not takes(fn, arity):
                continue
            ran = 0
            try:
                for check in own:
                    try:
                        check(fn)
                    except core.SkipCheck:
                        continue
                    ran += 1
            except Exception:  # noqa: BLE001 - any failure or error means it does not pass
                continue
            if ran:
                found.append((label, graded))
    return found


@pytest.fixture
def probe_safely(monkeypatch, tmp_path):
    """Grading mode (nothing installs or writes a submission), CUDA tests raise SkipCheck, and
    anything written lands in a scratch folder."""
    monkeypatch.setenv("SEQMOD_GRADING", "1")
    monkeypatch.setattr(core, "JUDGE_REPORTS_SKIPS", True)
    monkeypatch.chdir(tmp_path)


@pytest.mark.filterwarnings("ignore::UserWarning")  # public functions probed with odd inputs
@pytest.mark.parametrize("assignment", [spec.id for spec in assignments.available()])
def test_no_public_function_passes_a_graded_question(assignment, probe_safely):
    functions = [item for name in bundle_modules() for item in functions_of(name)]
    assert len(functions) > 20
    assert answers_among(functions, assignment) == []


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_probe_finds_a_right_answer(probe_safely):
    """Positive control: the private reference of the purifier passes its question's hidden tests."""
    found = answers_among(functions_of("autograder.references.purification"), "purification")
    assert ("autograder.references.purification.optimal_purifier", "optimal_purifier") in found
