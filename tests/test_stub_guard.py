"""The student notebook's helpers, in a real IPython shell: the stub guard and the submit cell's checks."""
import ast
import sys

import matplotlib
import nbformat
import pytest

from autograder import assignments
from autograder.checks.notebook import guard_stubs, is_stub
from autograder.checks.submit import NotReady, check_saved_since_run
from autograder.student_cells import _wrapped_list, graded_questions

matplotlib.use("Agg")


@pytest.fixture
def shell(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    monkeypatch.delenv("SEQMOD_GRADING", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    # IPython installs its own __main__ without a __spec__, which breaks every later process pool
    # (multiprocessing's forkserver reads __main__.__spec__); put pytest's back afterwards.
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    shell = InteractiveShell.instance()
    shell.ast_transformers[:] = []
    shell.reset()
    guard_stubs({"kernel": "q1", "forward": "q2"}, shell=shell)
    shell.run_cell("def kernel(n):\n    ...\n")
    shell.run_cell("def forward(x):\n    '''doc'''\n    ...\n")
    yield shell
    shell.ast_transformers[:] = []


def test_a_cell_failing_on_a_stub_names_the_question_and_lets_run_all_go_on(shell, capsys):
    import matplotlib.pyplot as plt
    plt.close("all")
    result = shell.run_cell("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot(kernel(5))\n")
    assert result.error_in_exec is None
    out = capsys.readouterr().out
    assert "Implement `kernel` first (question 1)" in out and "Traceback" not in out
    assert plt.get_fignums() == [], "the half-drawn figure must not be shown"


def test_a_stub_reached_through_a_helper_in_another_cell_is_named(shell, capsys):
    shell.run_cell("def helper(x):\n    return forward(x) + 1\n")
    result = shell.run_cell("value = helper(3)\n")
    assert result.error_in_exec is None
    assert "Implement `forward` first (question 2)" in capsys.readouterr().out


def test_several_stubs_name_the_first_question_and_the_others(shell, capsys):
    shell.run_cell("total = kernel(1) + forward(2)\n")
    assert "Implement `kernel` first (question 1): this cell uses it and 1 more unfinished function " \
           "(`forward`)" in capsys.readouterr().out


def test_a_cell_that_runs_on_a_stub_says_its_output_means_nothing_yet(shell, capsys):
    shell.run_cell("print('kernel:', kernel(3))\n")
    out = capsys.readouterr().out
    assert "kernel: None" in out and "means nothing yet" in out


def test_errors_in_finished_code_show_as_usual(shell, capsys):
    shell.run_cell("def kernel(n):\n    return [1] * n\n")
    result = shell.run_cell("kernel(2) + None\n")
    assert isinstance(result.error_in_exec, TypeError)
    assert "first (question" not in capsys.readouterr().out


def test_a_cell_that_defines_the_function_is_left_alone(shell, capsys):
    result = shell.run_cell("def kernel(n):\n    ...\n\nkernel\n")
    assert result.error_in_exec is None and result.result is not None  # its value is still displayed
    assert "first (question" not in capsys.readouterr().out


def test_is_stub(tmp_path):
    import importlib.util
    path = tmp_path / "answers.py"
    path.write_text("def a():\n    ...\n\n\ndef b():\n    'doc'\n    pass\n\n\ndef c():\n    return 1\n")
    module_spec = importlib.util.spec_from_file_location("answers", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    assert is_stub(module.a) and is_stub(module.b) and not is_stub(module.c)
    namespace = {}
    exec("def d():\n    ...\n", namespace)
    assert not is_stub(namespace["d"])  # no source to read: never called a stub


def test_saved_since_run():
    def saved(counts):
        return {"cells": [{"cell_type": "code", "execution_count": c} for c in counts]}
    check_saved_since_run(saved([1, 2, 3]), 4)
    check_saved_since_run(saved([1, 2, 3, 4]), 5)  # saved after Run All ran the submit cell too
    for counts, now in (([None, None, None], 4), ([1, 2, 3], 5), ([1, 2, 3, 4], 4)):
        with pytest.raises(NotReady, match="older than this run: save it"):
            check_saved_since_run(saved(counts), now)


def test_submit_cell_lines_fit_and_list_every_graded_name():
    names = sorted(f"function_number_{i}" for i in range(12))
    text = "graded=" + _wrapped_list(names, 12)
    assert max(len("    " + line) for line in text.split("\n")) <= 88
    assert ast.literal_eval(text.split("=", 1)[1]) == names


@pytest.mark.parametrize("spec", assignments.available(), ids=lambda s: s.id)
def test_every_graded_function_of_a_student_notebook_has_a_question(spec):
    nb = nbformat.read(spec.student, as_version=4)
    submit = next(c for c in reversed(nb.cells) if c.cell_type == "code")
    graded = ast.literal_eval(submit.source.split("graded=", 1)[1].split("namespace=")[0].strip().rstrip(","))
    questions = graded_questions(nb, set(graded))
    assert set(questions) == set(graded) and all(q.startswith("q") for q in questions.values())
    assert f"guard_stubs({questions!r})" in nb.cells[1].source
