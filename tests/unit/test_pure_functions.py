"""Pure helpers of the grader: status line, output names, solution markers, cost answers."""
import pytest

from autograder.checks.ridge_attention import parse_cost
from autograder.nbgrader_export import ExportError, case_grade_id, convert_solution_markers
from autograder.report import output_names, safe_name, status_text

# -- report.status_text ---------------------------------------------------------------------


def test_status_alone_when_nothing_to_note():
    assert status_text({"status": "Completed"}) == "Completed"
    assert status_text({}) == "Completed"
    assert status_text({"status": "timeout after 80 s"}) == "timeout after 80 s"


@pytest.mark.parametrize("policy,how", [("exclude", "left out of the total"), ("required", "scored 0: GPU required")])
def test_skipped_cuda_tests_follow_the_policy(policy, how):
    text = status_text({"status": "Completed", "skipped": ["q7/a", "q7/b"], "gpu_policy": policy})
    assert text == f"Completed (2 CUDA test(s) not run, no GPU; {how})"


def test_notes_join_into_one_parenthesis():
    result = {"status": "Completed (2 cells raised)", "notes": ["a note"], "isolation": "process only (no namespaces)"}
    assert status_text(result) == "Completed (2 cells raised; a note; reduced isolation: namespaces unavailable)"
    result = {"status": "Completed", "notes": ["a note"], "incidents": ["q1"]}
    assert status_text(result) == "Completed (a note; 1 test(s) crashed the notebook)"


def test_incidents_are_noted_only_on_completed_rows():
    assert status_text({"status": "timeout after 80 s", "incidents": ["q1"]}) == "timeout after 80 s"


# -- report.safe_name / output_names -----------------------------------------------------------


def test_plain_labels_stay_readable():
    assert safe_name("alice_hw1.ipynb") == "alice_hw1.ipynb"
    assert safe_name("sub-01.zip") == "sub-01.zip"


@pytest.mark.parametrize("label", ["a b.ipynb", "../../etc/passwd", "é.ipynb", "x" * 200, "..", ".", "",
                                   "con\x00trol", "a/b", "ü" * 50])
def test_unsafe_labels_become_safe_distinct_names(label):
    name = safe_name(label)
    assert name and len(name) <= 120 and name.strip(".")
    assert all(c.isascii() and (c.isalnum() or c in "-_.") for c in name)
    assert "/" not in name and name not in (".", "..")


def test_labels_that_look_alike_get_different_names():
    labels = ["a b.ipynb", "a_b.ipynb", "a?b.ipynb", "x" * 130, "x" * 131]
    names = [safe_name(label) for label in labels]
    assert len(set(names)) == len(names)
    assert names[1] == "a_b.ipynb", "the plain one keeps its name"


def test_names_are_stable():
    assert safe_name("a b.ipynb") == safe_name("a b.ipynb")
    assert output_names(["x y", "Z"]) == output_names(["x y", "Z"])


def test_labels_differing_only_in_case_get_distinct_names():
    names = output_names(["Alice.ipynb", "alice.ipynb", "bob.ipynb"])
    assert len({n.casefold() for n in names.values()}) == 3
    assert names["bob.ipynb"] == "bob.ipynb"
    assert names["Alice.ipynb"].startswith("Alice.ipynb-") and names["alice.ipynb"].startswith("alice.ipynb-")


# -- nbgrader_export.convert_solution_markers -------------------------------------------------


def test_block_markers_become_nbgrader_markers_with_indent():
    source = "def f(x):\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION"
    assert convert_solution_markers(source) == (
        "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION", True)


def test_a_run_of_line_solutions_becomes_one_region():
    source = "x = 1\ny = 2  # SOLUTION\nz = 3  # SOLUTION\nprint(y)"
    converted, found = convert_solution_markers(source)
    assert found
    assert converted == "x = 1\n### BEGIN SOLUTION\ny = 2\nz = 3\n### END SOLUTION\nprint(y)"


def test_line_solution_at_the_end_is_closed():
    converted, found = convert_solution_markers("    y = 2 # SOLUTION")
    assert found and converted == "    ### BEGIN SOLUTION\n    y = 2\n    ### END SOLUTION"


def test_no_markers_no_change():
    source = "print('# SOLUTION is only text here')\n# SOLUTION"
    assert convert_solution_markers(source) == (source, False)


@pytest.mark.parametrize("source,problem", [
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n# END SOLUTION", "nested"),
    ("x = 1\n# END SOLUTION", "without # BEGIN"),
    ("# BEGIN SOLUTION\nx = 1", "without # END"),
    ("x = 1  # SOLUTION NO PROMPT", "not supported"),
    ("# BEGIN PROMPT\nx = ...\n# END PROMPT", "not supported"),
    ("# BEGIN SOLUTION NO PROMPT\nx = 1\n# END SOLUTION", "not supported"),
])
def test_unsupported_or_broken_markers_are_refused(source, problem):
    with pytest.raises(ExportError, match=problem):
        convert_solution_markers(source)


def test_case_grade_ids_are_cell_id_safe():
    assert case_grade_id("q1", "kernel matches") == "q1_kernel_matches"
    assert case_grade_id("q2", "a/b.c") == "q2_a_b_c"


# -- checks.ridge_attention.parse_cost --------------------------------------------------------


@pytest.mark.parametrize("text,powers", [
    ("O(n d^2)", {"n": 1, "d": 2}),
    ("O(nd²)", {"n": 1, "d": 2}),
    ("o(n * d ** 2)", {"n": 1, "d": 2}),
    ("n·d·d", {"n": 1, "d": 2}),
    ("O(n^2 d)", {"n": 2, "d": 1}),
    ("O(d³)", {"d": 3}),
    ("O(1)", {}),
    ("1", {}),
    ("n n", {"n": 2}),
])
def test_costs_parse_to_powers(text, powers):
    assert parse_cost(text) == powers


@pytest.mark.parametrize("text", [None, 3, "", "O()", "O(n log n)", "O(m d)", "n^", "O(n d^2", "2n"])
def test_other_answers_do_not_parse(text):
    assert parse_cost(text) is None


def test_notebook_imports_are_absolute_modules_in_order_without_ipython_syntax():
    from autograder.module_imports import notebook_imports
    cells = ["%matplotlib inline\nimport torch, math\nfrom sklearn.datasets import load_digits",
             "!pip install x\nfrom . import local\nimport torch\nimport os.path as p",
             "def broken(:\n    import never"]
    assert notebook_imports(cells) == ["torch", "math", "sklearn.datasets", "os.path"]


def test_a_submission_key_is_the_notebook_or_the_problem_that_stops_it():
    import hashlib
    from pathlib import Path

    from autograder.results import Outcome, Status
    from autograder.submissions import Submission
    assert Submission("a", Path("a"), notebook=b"{}").key == hashlib.sha256(b"{}").hexdigest()
    refused = Submission("a", Path("a"), problem=Outcome(Status.NOT_GRADED, "too large"))
    assert refused.key == hashlib.sha256(b"not graded: too large").hexdigest()
    assert Submission("a", Path("a")).key == hashlib.sha256(b"").hexdigest()  # an empty file
