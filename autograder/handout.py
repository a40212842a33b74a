"""The solutions handout of an assignment, for release after the deadline.

`python -m autograder handout ASSIGNMENT --out DIR` writes `DIR/<id>_solutions.ipynb` and a standalone
`DIR/<id>_solutions.html`: the master notebook without its tests and otter markers, with every model
answer and the explanations that were moved out of the student notebook, run top to bottom in normal
(not grading) mode so that every plot is there.

Each written question's rubric is shown under its model answer: once grades are out, students should
be able to see how their answer was scored (it is what a regrade request is argued against), and the
rubric says nothing the model answer above it does not. Key facts are a build check and stay out.
"""
import os
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from . import assignments
from .assignments import ROOT
from .questions import ANSWER_PLACEHOLDER, BEGIN_SOLUTION, BEGIN_TESTS, END_SOLUTION, END_TESTS, questions
from .student_cells import SETUP_BEGIN, SETUP_END, setup_cell_source

SOLUTION_LINE_MARKER = re.compile(r"\s*# SOLUTION\s*$")  # otter's one-line solution marker


def _code_without_markers(source: str) -> str:
    lines = [line for line in source.split("\n") if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)]
    return "\n".join(SOLUTION_LINE_MARKER.sub("", line) for line in lines)


def _setup_cell(source: str, assignment: str) -> str:
    """The student notebook's setup block in place of the master's, so the handout runs on its own."""
    before, rest = source.split(SETUP_BEGIN, 1)
    after = rest.split(SETUP_END, 1)[1]
    return setup_cell_source(before, after, assignment, questions={})


def _rubric_cell(question):
    items = "\n".join(f"- {item.points:g} pt: {item.text}" for item in question.rubric)
    return nbformat.v4.new_markdown_cell(
        f"**Rubric, question {question.name} ({question.points:g} points).**\n\n{items}")


def handout_notebook(master, assignment: str):
    """The handout's cells, not yet executed: no config, markers, tests or answer placeholders."""
    rubric_after = {q.last_cell: q for q in questions(master) if q.rubric}
    cells, in_tests = [], False
    for index, cell in enumerate(master.cells):
        if cell.cell_type == "raw":
            marker = cell.source.strip().split("\n", 1)[0].strip()
            in_tests = {BEGIN_TESTS: True, END_TESTS: False}.get(marker, in_tests)
            if index in rubric_after:
                cells.append(_rubric_cell(rubric_after[index]))
            continue
        if in_tests:
            continue
        if cell.cell_type == "markdown":
            if cell.source.strip() == ANSWER_PLACEHOLDER or cell.source.startswith(("## Submit", "## Submission")):
                continue
            cells.append(nbformat.v4.new_markdown_cell(cell.source))
        else:
            source = cell.source
            if SETUP_BEGIN in source and SETUP_END in source:
                source = _setup_cell(source, assignment)
            cells.append(nbformat.v4.new_code_cell(_code_without_markers(source)))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}
    return notebook


def execute(notebook, timeout: int):
    """Runs the notebook top to bottom in the repository root, in normal mode (plots rendered)."""
    saved = {name: os.environ.pop(name, None) for name in ("SEQMOD_GRADING", "NBGRADER_EXECUTION")}
    os.environ["MPLBACKEND"], saved_backend = "module://matplotlib_inline.backend_inline", os.environ.get("MPLBACKEND")
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        for name, value in saved.items():
            if value is not None:
                os.environ[name] = value
        if saved_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved_backend
    return notebook


def write_handout(assignment_id: str, out: Path, timeout: int = 1800) -> list:
    """Writes the executed handout as .ipynb and .html into `out`; returns the two paths."""
    from nbconvert import HTMLExporter

    spec = assignments.Assignment(assignment_id)
    known = assignments.discover()
    if assignment_id not in known or not spec.master.exists():
        raise SystemExit(f"unknown assignment {assignment_id!r}; expected one of: {', '.join(known)}")
    notebook = execute(handout_notebook(nbformat.read(spec.master, as_version=4), assignment_id), timeout)
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:03d}"
    out.mkdir(parents=True, exist_ok=True)
    ipynb, html = out / f"{assignment_id}_solutions.ipynb", out / f"{assignment_id}_solutions.html"
    ipynb.write_text(nbformat.writes(notebook) + "\n")
    body, _ = HTMLExporter(template_name="lab", embed_images=True).from_notebook_node(notebook)
    html.write_text(body)
    return [ipynb, html]
