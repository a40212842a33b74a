"""Generated files are reproducible, current, and leak nothing to students."""
import json
import multiprocessing
import re
import zipfile
from concurrent.futures import ProcessPoolExecutor

import nbformat
import pytest

from autograder import assignments
from autograder.build import ask_before_tell_problems, build_one
from autograder.testfiles import load_questions
from tests.conftest import one_or_all

SPECS = assignments.available()
IDS = [s.id for s in SPECS]


@pytest.fixture(scope="module")
def fresh_builds():
    """Each assignment built from solutions/, in memory, two at a time (`otter assign` uses one core;
    processes, not threads: CPython 3.11's ast.parse can fail in two threads at once)."""
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(IDS, pool.map(build_one, SPECS)))


@pytest.mark.parametrize("assignment", one_or_all("ssm_forward_cpu"))
def test_build_is_byte_identical_twice(fresh_builds, assignment):
    """A second build in the same process gives the same bytes. (Every assignment's build is also
    compared below with the committed files, which an earlier process built: that fails too when
    a build is not reproducible, but cannot tell it from a stale file. All four with FULL=1.)"""
    first, second = fresh_builds[assignment], build_one(assignments.Assignment(assignment))
    assert first.keys() == second.keys()
    for path in first:
        assert first[path] == second[path], f"{path.name} differs between two builds"


@pytest.mark.parametrize("assignment", IDS)
def test_committed_files_are_current(fresh_builds, assignment):
    first = fresh_builds[assignment]
    for path, data in first.items():
        assert path.exists(), f"{path} is missing: run `python -m autograder build`"
        assert path.read_bytes() == data, f"{path} is stale: run `python -m autograder build` and commit"


def solution_lines(master):
    """Lines that only occur inside `# BEGIN SOLUTION` ... `# END SOLUTION` blocks of the master
    (a line that also stands in ordinary, visible code is no leak)."""
    hidden, visible = [], set()
    for cell in master.cells:
        if cell.cell_type != "code":
            continue
        inside = False
        for line in cell.source.split("\n"):
            marker = line.strip()
            if marker in ("# BEGIN SOLUTION", "BEGIN SOLUTION"):
                inside = True
            elif marker in ("# END SOLUTION", "END SOLUTION"):
                inside = False
            elif inside and len(marker) > 12 and not marker.startswith("#"):
                hidden.append(marker)
            elif not inside:
                visible.add(marker)
    return [line for line in hidden if line not in visible]


@pytest.mark.parametrize("assignment", IDS)
def test_student_notebook_has_no_solutions(assignment):
    spec = assignments.Assignment(assignment)
    master = nbformat.read(spec.master, as_version=4)
    student_text = spec.student.read_text()
    student = nbformat.read(spec.student, as_version=4)
    solutions = solution_lines(master)
    assert solutions, "the master notebook should have solution blocks"
    code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    leaked = [line for line in solutions if line in code]
    assert not leaked, f"solution lines in the student notebook: {leaked[:3]}"
    assert "BEGIN SOLUTION" not in student_text and "Model answer" not in student_text
    for cell in student.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.parametrize("assignment", IDS)
def test_student_notebook_has_no_hidden_tests(assignment):
    spec = assignments.Assignment(assignment)
    student = nbformat.read(spec.student, as_version=4)
    questions = load_questions(spec.zip_path)
    hidden = [c for q in questions for c in q.cases if c.hidden]
    public = [c for q in questions for c in q.cases if not c.hidden]
    assert hidden and public, "each assignment needs public and hidden tests"
    embedded = json.dumps(student.metadata.get("otter", {}))
    for case in hidden:
        assert case.name not in embedded, f"hidden test {case.name} is in the student notebook"
    assert "autograder.hidden" not in embedded
    for case in public:
        assert case.name in embedded, f"public test {case.name} is missing from the student notebook"


@pytest.mark.parametrize("assignment", IDS)
def test_rubrics_and_key_facts_stay_with_the_instructor(assignment):
    """The course's question keys (rubric, key_facts) reach neither the student notebook nor the zip."""
    from autograder.questions import questions
    spec = assignments.Assignment(assignment)
    master_questions = questions(spec.master)
    assert any(q.key_facts for q in master_questions), "the master should declare key facts"
    rubric_texts = [item.text for q in master_questions for item in q.rubric]
    with zipfile.ZipFile(spec.zip_path) as archive:
        shipped = {name: archive.read(name).decode("utf-8", "replace") for name in archive.namelist()}
    shipped[str(spec.student)] = spec.student.read_text()
    for name, text in shipped.items():
        assert "rubric:" not in text and "key_facts" not in text, f"question keys leak into {name}"
        leaked = [t for t in rubric_texts if t in text]
        assert not leaked, f"rubric items leak into {name}: {leaked[:2]}"


@pytest.mark.parametrize("assignment", IDS)
def test_notebook_cells_need_only_the_sandbox_library(assignment):
    """While grading, only the generic checks modules are importable (staging.SANDBOX_CHECKS):
    the master's own cells must not import an assignment's check module or the private parts."""
    from autograder.staging import SANDBOX_CHECKS
    allowed = {name[:-3] for name in SANDBOX_CHECKS if name.endswith(".py") and name != "__init__.py"}
    spec = assignments.Assignment(assignment)
    cells = [c.source for c in nbformat.read(spec.master, as_version=4).cells if c.cell_type == "code"
             and "BEGIN TEST CONFIG" not in c.source]
    imported = set()
    for source in cells:
        imported |= set(re.findall(r"autograder\.checks\.(\w+)", source))
        for names in re.findall(r"from autograder\.checks import ([\w, ]+)", source):
            imported |= set(names.replace(" ", "").split(","))
        assert "autograder.hidden" not in source and "autograder.references" not in source
    assert "notebook" in imported, "the setup cell should import autograder.checks.notebook"
    assert imported <= allowed, f"cells import {sorted(imported - allowed)}, absent while grading"


@pytest.mark.parametrize("assignment", IDS)
def test_zip_holds_tests_and_support_files(assignment):
    spec = assignments.Assignment(assignment)
    with zipfile.ZipFile(spec.zip_path) as archive:
        names = set(archive.namelist())
        assert {"run_autograder", "otter_config.json", "environment.yml"} <= names
        assert any(n.startswith("tests/") for n in names)
        assert "files/autograder/checks/core.py" in names
        assert all(info.date_time == (2020, 1, 1, 0, 0, 0) for info in archive.infolist())
        assert not any(re.search(r"\d{4}_\d{2}_\d{2}T", n) for n in names)


@pytest.mark.parametrize("assignment", IDS)
def test_every_test_has_points_and_calls_the_checks_library(assignment):
    for question in load_questions(assignments.Assignment(assignment).zip_path):
        for case in question.cases:
            assert case.points > 0
            assert case.params, f"{case.name} takes no notebook names: it checks nothing from the notebook"


def test_regeneration_reports_test_and_point_changes(tmp_path):
    import io

    from autograder.build import describe_changes
    spec = assignments.Assignment("ssm_forward_cpu")
    old = spec.zip_path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(old)) as src, zipfile.ZipFile(buffer, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "tests/q1.py":
                data = data.replace(b"@test_case(points=1, hidden=False)\ndef test_homework_examples",
                                    b"@test_case(points=3, hidden=False)\ndef test_homework_examples")
            if name == "tests/q2.py":
                data = data.replace(b"def test_follows_recurrence", b"def test_follows_the_recurrence")
            dst.writestr(name, data)
    report = "\n".join(describe_changes(spec.zip_path, old, buffer.getvalue()))
    assert "~ test q1/test_homework_examples: points changed" in report
    assert "points q1: 4 -> 6" in report
    assert "+ test q2/test_follows_the_recurrence (1 pt, public)" in report
    assert "- test q2/test_follows_recurrence removed" in report
    assert "q3" not in report


def test_public_bundle_is_current():
    """What Colab notebooks download: the checks library, public tests and pins, as committed."""
    from autograder.build import PUBLIC_BUNDLE, public_bundle
    assert PUBLIC_BUNDLE.exists(), "run `python -m autograder build`"
    assert PUBLIC_BUNDLE.read_bytes() == public_bundle({}), "notebooks/course_public.zip is stale: rebuild"
    with zipfile.ZipFile(PUBLIC_BUNDLE) as archive:
        names = archive.namelist()
    assert "autograder/checks/core.py" in names and "requirements.txt" in names
    assert not any(n.startswith(("autograder/hidden", "autograder/references", "solutions")) for n in names)


REINSTATED = {  # an explanation that used to stand above its question, and what the build must say
    "ridge_attention": (
        "**Keep the big matrix small.**",
        "The $d \\times d$ form costs $O(n d^2)$ to build $K^\\top K$ and $K^\\top V$, $O(d^3)$ to solve, "
        "and $O(n_q d\\, d_v)$ to apply to the queries: linear in the sequence length.",
        [("O(n d^2)", "q6"), ("O(n d^2)", "q9"), ("linear in the sequence length", "q9")]),
    "purification": (
        "## 4. Choosing $\\lambda$ to meet a specification",
        "The tightest upper bound comes from the weakest direction to keep, $\\sigma_k$; the tightest "
        "lower bound from the strongest direction to attenuate, $\\sigma_{k+1}$.",
        [("weakest direction to keep", "q6"), ("strongest direction to attenuate", "q6"), ("sigma_{k+1}", "q6")]),
}


def reinstated(assignment, tmp_path):
    """(copy of the master with REINSTATED's sentence put back above its question, the student
    notebook as committed, the problems the build must name)."""
    spec = assignments.Assignment(assignment)
    anchor, sentence, expected = REINSTATED[assignment]
    master = nbformat.read(spec.master, as_version=4)
    (cell,) = [c for c in master.cells if c.cell_type == "markdown" and anchor in c.source]
    cell.source += "\n\n" + sentence
    copy = tmp_path / spec.master.name
    nbformat.write(master, copy)
    student = nbformat.read(spec.student, as_version=4)
    (index,) = [i for i, c in enumerate(student.cells) if anchor in c.source]
    opening = student.cells[index].source.strip().split("\n", 1)[0][:60]
    problems = [f"{assignment}.ipynb: key fact {fact!r} of question {question} is told before the question is "
                f"asked, in student cell {index} ({opening!r})" for fact, question in expected]
    return copy, student, index, sentence, problems


@pytest.mark.parametrize("assignment", sorted(REINSTATED))
def test_an_explanation_told_before_its_question_is_named(assignment, tmp_path):
    """Each master's own key facts: the check the build runs, on the committed student notebook
    with the sentence put back (quick; the build itself is run below)."""
    copy, student, index, sentence, problems = reinstated(assignment, tmp_path)
    student.cells[index].source += "\n\n" + sentence
    assert ask_before_tell_problems(student, nbformat.read(copy, as_version=4), f"{assignment}.ipynb") == problems


@pytest.mark.parametrize("assignment", one_or_all("ridge_attention"))
def test_build_fails_when_an_explanation_is_told_before_its_question(assignment, tmp_path):
    """A copy of the master with a moved explanation put back above its question does not build
    (one `otter assign` each: on one assignment unless FULL=1)."""
    from types import SimpleNamespace
    spec = assignments.Assignment(assignment)
    copy, _, _, _, problems = reinstated(assignment, tmp_path)
    with pytest.raises(SystemExit) as failure:
        build_one(SimpleNamespace(id=assignment, master=copy, student=spec.student, zip_path=spec.zip_path))
    assert str(failure.value).split("\n") == ["ask before you tell:"] + problems
