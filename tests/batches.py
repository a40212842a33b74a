"""One graded batch per assignment for the whole test session, shared by the tests that need it.

Test modules say, when they are imported, which notebooks they need graded (`want`). The first
test that asks for results (the `graded_batches` fixture in tests/conftest.py) grades all the
wanted notebooks of each assignment in one parallel batch, as a TA would run them; a notebook
several modules want (the blank student notebook) is graded once.
"""
WANTED = {}  # {assignment: {label: () -> a notebook (NotebookNode) or a path to one}}


def want(assignment: str, label: str, make):
    """Have `make()` graded as `<label>.ipynb` in `assignment`'s shared batch."""
    WANTED.setdefault(assignment, {}).setdefault(label, make)
