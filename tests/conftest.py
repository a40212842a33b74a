import importlib
import os
from pathlib import Path

import pytest

from autograder import assignments
from autograder.grade import grade_all
from autograder.sandbox import Limits
from tests import budgets, notebooks

UNIT_TESTS = Path(__file__).resolve().parent / "unit"


def pytest_collection_modifyitems(items):
    """Everything under tests/unit/ is the fast layer (`make test-fast`, `pytest -m fast`)."""
    for item in items:
        if UNIT_TESTS in Path(item.path).parents:
            item.add_marker(pytest.mark.fast)


WORKERS = int(os.environ.get("SEQMOD_TEST_WORKERS", os.cpu_count() or 2))
ONLY = [a for a in os.environ.get("SEQMOD_ASSIGNMENTS", "").split(",") if a]


def selected_assignments():
    """The assignments to test (all that exist, or those named in SEQMOD_ASSIGNMENTS)."""
    return [s for s in assignments.available() if not ONLY or s.id in ONLY]


def mutant_module(assignment):
    return importlib.import_module(f"tests.mutants.{assignment}")


@pytest.fixture(scope="session")
def soundness_results(tmp_path_factory):
    """Grade, once per session, every assignment's reference, blank, mutants and variants.

    All notebooks go through one parallel batch (as a TA would run them), in grading mode.
    Returns {assignment: {label: result}}.
    """
    folder = tmp_path_factory.mktemp("soundness")
    paths_by_assignment = {}
    for spec in selected_assignments():
        module = mutant_module(spec.id)
        paths = {"reference": spec.master, "blank": spec.student}
        for item in [*module.MUTANTS, *module.VARIANTS]:
            nb = notebooks.with_replacements(spec.id, item.replace)
            paths[item.name] = notebooks.write(nb, folder / spec.id / f"{item.name}.ipynb")
        paths_by_assignment[spec.id] = paths
    results = {}
    for assignment, paths in paths_by_assignment.items():
        staged = {}
        for label, path in paths.items():
            target = folder / assignment / "batch" / f"{label}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(Path(path).read_bytes())
            staged[label] = target
        graded = grade_all(assignment, [folder / assignment / "batch"], folder / assignment / "out",
                           workers=WORKERS, limits=Limits(timeout_s=budgets.budget(240)), force=True)
        by_file = {r["file"]: r for r in graded}
        results[assignment] = {label: by_file[f"{label}.ipynb"] for label in staged}
    return results
