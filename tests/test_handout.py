"""The solutions handout: the reference notebook run in normal mode, with model answers and rubrics,
without tests or grading code (one real run, of the quickest assignment)."""
import json
from html import escape

import nbformat
import pytest

from autograder import assignments
from autograder.__main__ import main
from autograder.questions import questions
from autograder.testfiles import load_questions

ASSIGNMENT = "purification"


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    out = tmp_path_factory.mktemp("handout")
    assert main(["handout", ASSIGNMENT, "--out", str(out)]) == 0
    notebook = nbformat.read(out / f"{ASSIGNMENT}_solutions.ipynb", as_version=4)
    return notebook, (out / f"{ASSIGNMENT}_solutions.html").read_text()


def test_handout_has_every_model_answer_and_rubric(handout):
    notebook, html = handout
    markdown = [c.source for c in notebook.cells if c.cell_type == "markdown"]
    master_questions = questions(assignments.Assignment(ASSIGNMENT).master)
    written = [q for q in master_questions if q.manual]
    assert written
    for question in written:
        assert question.model_answer in markdown, f"model answer of {question.name} is missing"
        rubric = next(s for s in markdown if s.startswith(f"**Rubric, question {question.name} "))
        assert all(f"- {item.points:g} pt: {item.text}" in rubric for item in question.rubric)
        assert all(escape(item.text, quote=False) in html for item in question.rubric)
    assert html.count("<strong>Model answer.</strong>") == len(written)
    assert any(s.startswith("**Which singular values bound $\\lambda$.**") for s in markdown), \
        "the explanation moved out of the student notebook belongs in the handout"
    assert not any(s.startswith("_Type your answer here") for s in markdown)


def test_handout_has_no_tests_or_grading_code(handout):
    notebook, html = handout
    text = json.dumps([c.source for c in notebook.cells])
    for marker in ("BEGIN QUESTION", "END QUESTION", "BEGIN SOLUTION", "END SOLUTION", "BEGIN TESTS",
                   "TEST CONFIG", "ASSIGNMENT CONFIG", "# SOLUTION", "key_facts", "rubric:",
                   "autograder.hidden", "hidden: true", "def test_", "grader.export"):
        assert marker not in text, f"{marker!r} is in the handout"
        assert marker not in html, f"{marker!r} is in the HTML handout"
    for question in load_questions(assignments.Assignment(ASSIGNMENT).zip_path):
        for case in question.cases:
            assert case.name not in text and case.name not in html


def test_handout_is_executed_with_plots_and_solutions(handout):
    notebook, html = handout
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "every code cell ran"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4, "the three figures and the digits are rendered (normal mode, not grading mode)"
    assert html.count("data:image/png;base64,") >= len(images), "the HTML embeds its images"
    assert any("def optimal_purifier(X, lam):\n    U, s, _ = torch.linalg.svd" in c.source for c in code)
    printed = "".join(o.get("text", "") for o in outputs)
    assert "feasible range of lam: [1, 4]" in printed
