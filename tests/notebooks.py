"""Make test notebooks from the master: mutants, variants, faults and cheats.

A mutant replaces the cells that define some graded functions with other code. Everything
else (setup, plots, written answers) stays as in the reference, so the notebook still runs top
to bottom and only the mistake differs.
"""
import ast
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.assignments import ROOT


@dataclass(kw_only=True)
class Mutant:
    """A known-wrong solution: `replace` maps function names to new source; `loses` lists the
    questions that must lose points, `keeps` the questions that must keep full marks, and `says`
    a phrase the feedback must contain: the mistake, named. All are required; `loses` and `says`
    may be empty only for a mistake this machine cannot see (e.g. one that shows on CUDA only)."""
    name: str = field(kw_only=False)
    why: str = field(kw_only=False)
    replace: dict = field(kw_only=False)
    loses: list
    keeps: list
    says: str

    def __post_init__(self):
        if bool(self.loses) != bool(self.says.strip()):
            raise ValueError(f"mutant {self.name}: a mutant that loses points must say which mistake it is")
        if set(self.loses) & set(self.keeps):
            raise ValueError(f"mutant {self.name}: {sorted(set(self.loses) & set(self.keeps))} both lost and kept")


@dataclass
class Variant:
    """A correct solution written differently: it must get full marks."""
    name: str
    why: str
    replace: dict


def defined_names(source: str) -> set:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def reference_notebook(assignment: str):
    return nbformat.read(ROOT / "solutions" / f"{assignment}.ipynb", as_version=4)


def with_replacements(assignment: str, replace: dict, base=None):
    """The reference notebook (or `base`) with the cells defining each named function swapped out."""
    nb = reference_notebook(assignment) if base is None else base
    remaining = dict(replace)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        names = defined_names(cell.source) & set(remaining)
        if names:
            cell.source = "\n\n".join(textwrap.dedent(remaining.pop(n)).strip() for n in sorted(names))
    if remaining:
        raise KeyError(f"no cell defines {sorted(remaining)} in {assignment}")
    return nb


def append_cells(nb, *sources, at=None):
    cells = [nbformat.v4.new_code_cell(textwrap.dedent(s).strip()) for s in sources]
    if at is None:
        nb.cells.extend(cells)
    else:
        nb.cells[at:at] = cells
    return nb


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
