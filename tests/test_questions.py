"""Reading questions from a master notebook, and the build's rubric and ask-before-tell checks
(small in-memory notebooks: no otter run)."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from autograder.build import ask_before_tell_problems, rubric_problems, student_master, unstated_key_fact_problems
from autograder.questions import (
    Question,
    QuestionError,
    RubricItem,
    normalize_fact,
    questions,
    strip_course_keys,
    written_questions,
)

WRITTEN_CONFIG = """# BEGIN QUESTION
name: q2
manual: true
points: 3
rubric:
  - {points: 2, item: "work O(n d^2)"}
  - {points: 1, item: "linear in n"}
key_facts: ["O(n d^2)", "linear in the sequence length"]"""


def small_master(explanation="Ridge attention solves a small linear system.", rubric_points=(2, 1)):
    config = WRITTEN_CONFIG.replace("{points: 2,", f"{{points: {rubric_points[0]},").replace(
        "{points: 1,", f"{{points: {rubric_points[1]},")
    return new_notebook(cells=[
        new_markdown_cell("# Title"),
        new_raw_cell("# BEGIN QUESTION\nname: q1"),
        new_markdown_cell("**Question 1.** Implement `f`."),
        new_raw_cell("# BEGIN SOLUTION"),
        new_code_cell("def f(x):\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION"),
        new_raw_cell("# END SOLUTION"),
        new_raw_cell("# BEGIN TESTS"),
        new_code_cell('""" # BEGIN TEST CONFIG\npoints: 1\n""" # END TEST CONFIG\n'
                      'def test_f(f):\n    assert f(1) == 1'),
        new_raw_cell("# END TESTS"),
        new_raw_cell("# END QUESTION"),
        new_markdown_cell(explanation),
        new_raw_cell(config),
        new_markdown_cell("**Question 2 (written).** What does it cost?"),
        new_markdown_cell("Think of the sizes."),
        new_markdown_cell("_Type your answer here, replacing this text._"),
        new_raw_cell("# BEGIN SOLUTION"),
        new_markdown_cell("**Model answer.** $O(n d^2)$, linear in the sequence length."),
        new_raw_cell("# END SOLUTION"),
        new_raw_cell("# END QUESTION"),
    ])


def student_view(master):
    """What otter shows a student, as far as the check reads it: markdown and code cells, without
    tests and without the markdown of model answers (code inside a solution block stays, as a stub)."""
    cells, in_solution, in_tests = [], False, False
    for cell in master.cells:
        marker = cell.source.strip() if cell.cell_type == "raw" else ""
        in_solution = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(marker, in_solution)
        in_tests = {"# BEGIN TESTS": True, "# END TESTS": False}.get(marker, in_tests)
        if cell.cell_type == "raw" or in_tests or (in_solution and cell.cell_type == "markdown"):
            continue
        cells.append(nbformat.from_dict(dict(cell)))
    return new_notebook(cells=cells)


def test_questions_reads_code_and_written_questions():
    found = questions(small_master())
    assert [q.name for q in found] == ["q1", "q2"]
    code, written = found
    assert code == Question(name="q1", points=None, manual=False, prompt="**Question 1.** Implement `f`.",
                            model_answer="", rubric=(), key_facts=(), first_cell=1, last_cell=9)
    assert written == Question(
        name="q2", points=3.0, manual=True,
        prompt="**Question 2 (written).** What does it cost?\n\nThink of the sizes.",
        model_answer="**Model answer.** $O(n d^2)$, linear in the sequence length.",
        rubric=(RubricItem(2.0, "work O(n d^2)"), RubricItem(1.0, "linear in n")),
        key_facts=("O(n d^2)", "linear in the sequence length"), first_cell=11, last_cell=18)
    assert written_questions(small_master()) == [written]


def test_questions_reads_the_real_masters():
    written = written_questions("solutions/purification.ipynb")
    assert [q.name for q in written] and all(q.model_answer.startswith("**Model answer.**") for q in written)
    assert all(q.prompt.startswith("**Question") for q in written)


def test_bad_question_configs_are_named():
    master = small_master()
    master.cells[11].source = WRITTEN_CONFIG.replace('key_facts: ["O(n d^2)", "linear in the sequence length"]',
                                                     "key_facts: O(n d^2)")
    with pytest.raises(QuestionError, match="q2: `key_facts` must be a list of non-empty strings"):
        questions(master)
    master.cells[11].source = WRITTEN_CONFIG.replace('item: "linear in n"', 'text: "linear in n"')
    with pytest.raises(QuestionError, match="q2: rubric entry .* must have exactly `points` and `item`"):
        questions(master)
    master.cells[18].source = "just text"
    master.cells[11].source = WRITTEN_CONFIG
    with pytest.raises(QuestionError, match="q2: no `# END QUESTION`"):
        questions(master)


@pytest.mark.parametrize("text, normal", [
    ("$O(n d^2)$", "o(nd^2)"),
    ("O(N D^{2})", "o(nd^2)"),
    ("\\sigma_{k+1}", "sigma_k+1"),
    ("  Linear in\nthe sequence   length ", "linearinthesequencelength"),
    ("$\\log H$", "logh"),
])
def test_normalize_fact(text, normal):
    assert normalize_fact(text) == normal


def test_normalize_fact_keeps_what_changes_meaning():
    assert normalize_fact("O(n^2 d)") != normalize_fact("O(n d^2)")
    assert normalize_fact("sigma_k") != normalize_fact("sigma_{k+1}")


def test_strip_course_keys_leaves_otter_keys():
    assert strip_course_keys(WRITTEN_CONFIG) == "# BEGIN QUESTION\nname: q2\nmanual: true\npoints: 3"
    flow = ("# BEGIN QUESTION\nname: q3\nkey_facts:\n  - a\n  - b\nmanual: true\n"
            "rubric:\n- {points: 1, item: x}\npoints: 1")
    assert strip_course_keys(flow) == "# BEGIN QUESTION\nname: q3\nmanual: true\npoints: 1"


def test_student_master_has_no_rubric_or_key_facts():
    master = small_master()
    stripped = student_master(master)
    text = "\n".join(c.source for c in stripped.cells)
    assert "rubric" not in text and "key_facts" not in text
    assert stripped.cells[11].source == "# BEGIN QUESTION\nname: q2\nmanual: true\npoints: 3"
    assert "rubric" in master.cells[11].source, "the master itself is left alone"


def test_rubric_must_add_up_to_the_points():
    assert rubric_problems(questions(small_master())) == []
    assert rubric_problems(questions(small_master(rubric_points=(2, 2)))) == [
        "written question q2: its rubric adds up to 4 points, but the question is worth 3.0"]
    master = small_master()
    master.cells[11].source = strip_course_keys(WRITTEN_CONFIG)
    assert rubric_problems(questions(master)) == ["written question q2 has no rubric"]


def test_ask_before_tell_passes_when_the_answer_comes_after():
    master = small_master()
    assert ask_before_tell_problems(student_view(master), master, "small.ipynb") == []


@pytest.mark.parametrize("explanation, fact", [
    ("Ridge attention costs $O(nd^2)$ per query block.", "O(n d^2)"),
    ("So it is Linear in the\nsequence length.", "linear in the sequence length"),
])
def test_ask_before_tell_fails_on_a_reinstated_explanation(explanation, fact):
    master = small_master(explanation)
    student = student_view(master)
    assert student.cells[3].source == explanation
    assert ask_before_tell_problems(student, master, "small.ipynb") == [
        f"small.ipynb: key fact {fact!r} of question q2 is told before the question is asked, "
        f"in student cell 3 ({explanation.split(chr(10))[0][:60]!r})"]


def test_ask_before_tell_reads_code_cells_too():
    master = small_master()
    master.cells.insert(10, new_code_cell("# the attention step is O(n d^2)\nx = 1"))
    problems = ask_before_tell_problems(student_view(master), master, "small.ipynb")
    assert problems == ["small.ipynb: key fact 'O(n d^2)' of question q2 is told before the question is "
                        "asked, in student cell 3 ('# the attention step is O(n d^2)')"]


def test_key_facts_must_be_stated_by_the_question_itself():
    assert unstated_key_fact_problems(small_master()) == []
    master = small_master()
    master.cells[11].source = WRITTEN_CONFIG.replace('"linear in the sequence length"', '"linear in n"')
    assert unstated_key_fact_problems(master) == [
        "question q2: key fact 'linear in n' is not stated in its model answer or solution"]
