import importlib
import os
from pathlib import Path

import pytest

from autograder import assignments
from tests import batches, budgets

UNIT_TESTS = Path(__file__).resolve().parent / "unit"
# Modules outside tests/unit/ that grade nothing and start no kernel.
FAST_MODULES = {"test_wire.py", "test_trace.py", "test_environment.py"}
# With tests/test_cuda.py, what `pytest -m cuda` selects.
CUDA_PARAMETRIZED_FILES = ("test_soundness.py", "test_dummy_cheats.py")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items):
    """Markers from where a test lives. `fast` (`make test-fast`): everything under tests/unit/ and
    the modules in FAST_MODULES. `cuda` (`pytest -m cuda`): the ssm_forward_gpu cases of
    CUDA_PARAMETRIZED_FILES, which run the CUDA-only checks on a GPU and run on the CPU as usual without one.
    Then the order in which the tests run (below)."""
    for item in items:
        path = Path(item.path)
        if UNIT_TESTS in path.parents or (path.parent == UNIT_TESTS.parent and path.name in FAST_MODULES):
            item.add_marker(pytest.mark.fast)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if path.name in CUDA_PARAMETRIZED_FILES and params.get("assignment") == "ssm_forward_gpu":
            item.add_marker(pytest.mark.cuda)
    # The order, whole modules at a time (a stable sort keeps the usual order within each group):
    # 1. the browser tests, alone: beside a grading batch they take half as long again, though
    #    the CPU looks idle a third of the time during them;
    # 2. the modules with no load-scaled budgets, while the shared batches are graded in the
    #    background (`pytest_runtest_setup`) on the CPU they leave idle;
    # 3. the modules that scale their budgets by the measured load (they import tests.budgets):
    #    on a quieter machine their timeout rows end sooner;
    # 4. the modules that read the shared batches.
    readers = {item.path for item in items if uses_shared_batches(item)}

    def group(item):
        if item.path in readers:
            return 3
        if item.get_closest_marker("browser"):
            return 0
        return 2 if getattr(item.module, "budgets", None) is budgets else 1

    items.sort(key=group)


WORKERS = int(os.environ.get("SEQMOD_TEST_WORKERS", os.cpu_count() or 2))
NEEDS_BATCHES = pytest.StashKey[bool]()
ONLY = [a for a in os.environ.get("SEQMOD_ASSIGNMENTS", "").split(",") if a]
FULL = os.environ.get("FULL", "") == "1"


def selected_assignments():
    """The assignments to test (all that exist, or those named in SEQMOD_ASSIGNMENTS)."""
    return [s for s in assignments.available() if not ONLY or s.id in ONLY]


def one_or_all(default: str) -> list:
    """The assignment ids a costly end-to-end test runs on: every selected one with FULL=1 or
    SEQMOD_ASSIGNMENTS set, else only `default` (see README: what `make test` leaves to FULL=1)."""
    ids = [s.id for s in selected_assignments()]
    if FULL or ONLY:
        return ids
    return [default] if default in ids else ids[:1]


def mutant_module(assignment):
    return importlib.import_module(f"tests.mutants.{assignment}")


def uses_shared_batches(item) -> bool:
    return "graded_batches" in getattr(item, "fixturenames", ())


def pytest_collection_finish(session):
    """Whether the selected tests need the shared batches (tests/batches.py)."""
    session.config.stash[NEEDS_BATCHES] = (not session.config.option.collectonly and bool(batches.WANTED)
                                           and any(uses_shared_batches(item) for item in session.items))


def pytest_runtest_setup(item):
    """The first test that is not a browser test starts the shared batches' background grading."""
    if item.config.stash.get(NEEDS_BATCHES, False) and not item.get_closest_marker("browser"):
        batches.start(WORKERS)


def pytest_sessionfinish(session):
    batches.clean_up()


@pytest.fixture(scope="session")
def graded_batches():
    """{assignment: {label: result}} for every notebook a collected module wants (tests/batches.py),
    graded once per session in one parallel batch per assignment, in grading mode."""
    return batches.results(WORKERS)
