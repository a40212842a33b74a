"""Regenerate the demo's sample submissions in data/sample_submissions/<assignment>/.

For each assignment: `full.ipynb` (every graded function filled in with the reference),
`partial.ipynb` (the first half filled in), `blank.ipynb` (the untouched student notebook).
They are what a student would hand in; the demo grades them. Run from the repository root:

    .venv/bin/python -m tools.make_samples
"""
import ast
import re

import nbformat

from autograder import assignments
from autograder.assignments import ROOT


def defined(source):
    try:
        return [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    except SyntaxError:
        return []


def filled(spec, fraction):
    master = nbformat.read(spec.master, as_version=4)
    student = nbformat.read(spec.student, as_version=4)
    solutions = {}
    for cell in master.cells:
        if cell.cell_type == "code" and "BEGIN SOLUTION" in cell.source:
            for name in defined(cell.source):
                solutions[name] = cell.source
    stubs = [i for i, c in enumerate(student.cells) if c.cell_type == "code" and c.source.rstrip().endswith("...")
             and defined(c.source)]
    for index in stubs[: round(len(stubs) * fraction)]:
        name = defined(student.cells[index].source)[0]
        code = solutions[name].replace("    # BEGIN SOLUTION\n", "").replace("    # END SOLUTION\n", "")
        student.cells[index].source = code.replace("    # END SOLUTION", "").rstrip()
    if fraction >= 1.0:  # value answers too: `name = ...` lines become the master's `# SOLUTION` line
        values = {}
        for cell in master.cells:
            for line in cell.source.split("\n") if cell.cell_type == "code" else []:
                match = re.match(r"^(\s*)(\w+)\s*=\s*(.+?)\s*#\s*SOLUTION\s*$", line)
                if match:
                    values[match.group(2)] = f"{match.group(1)}{match.group(2)} = {match.group(3)}"
        for cell in student.cells:
            if cell.cell_type == "code":
                cell.source = "\n".join(
                    values.get(m.group(2), line) if (m := re.match(r"^(\s*)(\w+)\s*=\s*\.\.\.\s*(#.*)?$", line))
                    else line for line in cell.source.split("\n"))
    for cell in student.cells:
        if cell.cell_type == "markdown" and "_Type your answer here" in cell.source:
            cell.source = "My answer: (written answers are graded by hand)"
    return student


def main():
    for spec in assignments.available():
        folder = ROOT / "data" / "sample_submissions" / spec.id
        folder.mkdir(parents=True, exist_ok=True)
        for name, fraction in (("full", 1.0), ("partial", 0.5), ("blank", 0.0)):
            nbformat.write(filled(spec, fraction), folder / f"{name}.ipynb")
        print(f"wrote {folder}")


if __name__ == "__main__":
    main()
