"""Every assignment has all its pieces (docs/NEW_ASSIGNMENT.md): an assignment is a master notebook
in solutions/, and each piece it lacks is named, never skipped without a word.

The same check runs on a throwaway assignment in a copy of the repository's layout, once with
every piece and once without each of them, so each omission is seen to fail.
"""
import ast
import shutil

import pytest

from autograder import assignments
from autograder.assignments import ROOT

DUMMY_CHEATS = "tests/test_dummy_cheats.py"


def referenced_modules(hidden_source: str) -> set:
    """Modules of autograder.references that a hidden checks module imports."""
    names = set()
    for node in ast.walk(ast.parse(hidden_source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module.lstrip(".")
            if module == "references" or node.module == "autograder.references":
                names |= {alias.name for alias in node.names}
            elif module.startswith("references.") or node.module.startswith("autograder.references."):
                names.add(module.rsplit(".", 1)[1])
    return names


def dict_keys(source: str, name: str) -> set:
    """The string keys of the module-level dict literal `name`."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            if isinstance(node.value, ast.Dict):
                return {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return set()


def list_length(source: str, name: str) -> int:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            if isinstance(node.value, ast.List):
                return len(node.value.elts)
    return 0


def readme_rows(text: str) -> set:
    """Assignment ids in the first column of the README's tables (`| `id` | ... |`)."""
    rows = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and len(cells) > 1 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows.add(cells[0].strip("`"))
    return rows


def missing_pieces(root, assignment: str) -> list:
    """What `assignment` lacks under `root`, one line per piece, naming the file to add or edit."""
    missing = []
    checks = root / "autograder" / "checks" / f"{assignment}.py"
    if not checks.exists():
        missing.append(f"public checks module {checks.relative_to(root)}")
    hidden = root / "autograder" / "hidden" / f"{assignment}.py"
    if not hidden.exists():
        missing.append(f"hidden checks module {hidden.relative_to(root)}")
    else:
        references = referenced_modules(hidden.read_text())
        found = [r for r in references if (root / "autograder" / "references" / f"{r}.py").exists()]
        if not found:
            missing.append(f"references module: {hidden.relative_to(root)} imports none from autograder/references/")
    mutants = root / "tests" / "mutants" / f"{assignment}.py"
    if not mutants.exists():
        missing.append(f"mutants module {mutants.relative_to(root)}")
    elif list_length(mutants.read_text(), "MUTANTS") == 0:
        missing.append(f"mutants: {mutants.relative_to(root)} defines no MUTANTS")
    if assignment not in dict_keys((root / DUMMY_CHEATS).read_text(), "DUMMIES"):
        missing.append(f"dummy cheats: an entry in DUMMIES in {DUMMY_CHEATS}")
    if assignment not in readme_rows((root / "README.md").read_text()):
        missing.append(f"README row: | `{assignment}` | what students build |")
    return missing


@pytest.mark.parametrize("assignment", assignments.discover())
def test_every_assignment_has_all_its_pieces(assignment):
    assert missing_pieces(ROOT, assignment) == [], f"{assignment} lacks pieces (see docs/NEW_ASSIGNMENT.md)"


def test_the_contract_assignments_are_discovered_in_contract_order():
    assert assignments.discover()[:4] == assignments.CONTRACT_ORDER


# -- a throwaway assignment in a copy of the layout ------------------------------------------

TOY = "toy_sums"
TOY_PIECES = {
    "public checks module": f"autograder/checks/{TOY}.py",
    "hidden checks module": f"autograder/hidden/{TOY}.py",
    "references module": f"autograder/references/{TOY}.py",
    "mutants module": f"tests/mutants/{TOY}.py",
}


@pytest.fixture
def layout(tmp_path):
    """The repository's README and dummy-cheat table, plus a complete toy assignment."""
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copy(ROOT / DUMMY_CHEATS, tmp_path / DUMMY_CHEATS)
    files = {
        f"solutions/{TOY}.ipynb": "{}",
        TOY_PIECES["public checks module"]: "def total_is_right(total):\n    assert total([1, 2]) == 3\n",
        TOY_PIECES["hidden checks module"]: "from ..references import toy_sums as ref\n\n\n"
                                            "def total_on_fresh_lists(total):\n"
                                            "    assert total([4]) == ref.total([4])\n",
        TOY_PIECES["references module"]: "def total(xs):\n    return sum(xs)\n",
        TOY_PIECES["mutants module"]: "MUTANTS = [Mutant('off_by_one', 'adds one', {}, loses=['q1'], keeps=[], "
                                      "says='one too many')]\n",
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    dummies = tmp_path / DUMMY_CHEATS
    dummies.write_text(dummies.read_text().replace("\nDUMMIES = {\n", f'\nDUMMIES = {{\n    "{TOY}": {{}},\n', 1))
    readme = tmp_path / "README.md"
    row = "| `ridge_attention` |"
    readme.write_text(readme.read_text().replace(row, f"| `{TOY}` | sums |\n{row}", 1))
    return tmp_path


def test_a_complete_toy_assignment_is_discovered_and_lacks_nothing(layout):
    assert TOY in assignments.discover(layout)
    assert missing_pieces(layout, TOY) == []


@pytest.mark.parametrize("piece", sorted(TOY_PIECES))
def test_each_missing_file_is_named(layout, piece):
    (layout / TOY_PIECES[piece]).unlink()
    missing = missing_pieces(layout, TOY)
    assert len(missing) == 1 and missing[0].startswith(piece.split(" module")[0]), missing


def test_an_empty_mutants_list_is_named(layout):
    (layout / TOY_PIECES["mutants module"]).write_text("MUTANTS = []\n")
    assert missing_pieces(layout, TOY) == [f"mutants: tests/mutants/{TOY}.py defines no MUTANTS"]


def test_a_missing_dummy_cheat_entry_is_named(layout):
    dummies = layout / DUMMY_CHEATS
    dummies.write_text(dummies.read_text().replace(f'    "{TOY}": {{}},\n', ""))
    assert missing_pieces(layout, TOY) == [f"dummy cheats: an entry in DUMMIES in {DUMMY_CHEATS}"]


def test_a_missing_readme_row_is_named(layout):
    readme = layout / "README.md"
    readme.write_text(readme.read_text().replace(f"| `{TOY}` | sums |\n", ""))
    assert missing_pieces(layout, TOY) == [f"README row: | `{TOY}` | what students build |"]


def test_without_its_master_notebook_it_is_no_assignment(layout):
    (layout / "solutions" / f"{TOY}.ipynb").unlink()
    assert TOY not in assignments.discover(layout)
