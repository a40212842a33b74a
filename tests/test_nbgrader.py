"""The nbgrader export is real: nbgrader itself generates, autogrades and records the same scores
as the course grader.

In a temporary course directory (SQLite gradebook): `nbgrader generate_assignment` on the
exported source, the sample submissions put into the released notebook (the student's code cell
for cell, as a student of an nbgrader course would hand it in) under
`submitted/<student>/<id>/<id>.ipynb`, `nbgrader autograde`, then every autograded test cell's
score from nbgrader's Gradebook equals the course grader's verdict on the same sample, test by
test. The course grader grades the samples while nbgrader runs.
"""
import ast
import copy
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder import assignments
from autograder.nbgrader_export import case_grade_id, export, export_one
from tests.ingrader import (
    IDS,
    PROCESS_TIMEOUT_S,
    SPECS,
    explain,
    in_kernel_points,
    kernel_env,
    our_results,
    sample_paths,
    shipped_gpu_policy,
)

COURSE_ID = "seqmod"
STUDENTS = ("full", "partial", "blank")  # one student per sample


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbgrader-course")
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.CourseDirectory.db_url = {db_url(root)!r}\n"
        f"c.Execute.timeout = {PROCESS_TIMEOUT_S}\n"
        f"c.Execute.startup_timeout = {PROCESS_TIMEOUT_S}\n")
    return root


def db_url(root) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


def nbgrader(root, *args):
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=kernel_env(),
                          capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    return done


def defined_names(source: str) -> set:
    """Top-level functions, classes and assigned names of a cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def as_nbgrader_submission(source_nb, release_nb, sample_nb):
    """The released notebook with the sample's answers: each nbgrader solution cell gets the
    sample's cell defining the same names; written answers go over in order."""
    nb = copy.deepcopy(release_nb)
    source_cells = {c.metadata["nbgrader"]["grade_id"]: c for c in source_nb.cells if "nbgrader" in c.metadata}
    sample_code = [c for c in sample_nb.cells if c.cell_type == "code"]
    answered = [c for c in sample_nb.cells
                if c.cell_type == "markdown" and "otter_answer_cell" in c.metadata.get("tags", [])]
    written = [c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution")]
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("solution"):
            continue
        names = defined_names(source_cells[meta["grade_id"]].source)
        tagged = [c for c in sample_code if "otter_answer_cell" in c.metadata.get("tags", [])]
        matches = [c for c in tagged if defined_names(c.source) & names] or \
                  [c for c in sample_code if defined_names(c.source) & names]
        assert matches, f"the sample has no cell defining {sorted(names)}"
        cell.source = matches[-1].source
    if len(answered) == len(written):
        for cell, answer in zip(written, answered):
            cell.source = answer.source
    return nb


def nbgrader_scores(root, assignment: str) -> dict:
    """{student: {grade_id: (auto_score, max_score, needs_manual_grade)}} from the gradebook."""
    scores = {}
    with Gradebook(db_url(root), COURSE_ID) as gb:
        for student in STUDENTS:
            submitted = gb.find_submission_notebook(assignment, assignment, student)
            scores[student] = {g.name: (g.auto_score, g.max_score, g.needs_manual_grade) for g in submitted.grades}
    return scores


@pytest.mark.parametrize("assignment", SPECS)
def test_export_is_deterministic(assignment):
    spec = assignments.Assignment(assignment)
    assert export_one(spec) == export_one(spec)


@pytest.mark.parametrize("assignment", IDS)
def test_nbgrader_autograde_agrees_with_course_grader(course, assignment):
    # Export first: on CPython 3.11, ast.parse in two threads at once can raise SystemError
    # ("AST constructor recursion depth mismatch"), and grading in the background parses too.
    export([assignment], out=course)
    with ThreadPoolExecutor(max_workers=1) as pool:
        ours_future = pool.submit(our_results, assignment)

        nbgrader(course, "generate_assignment", assignment, "--force")
        release = course / "release" / assignment
        release_nb = nbformat.read(release / f"{assignment}.ipynb", as_version=4)
        source_nb = nbformat.read(course / "source" / assignment / f"{assignment}.ipynb", as_version=4)

        # Students get neither solutions nor hidden tests nor the private checks.
        released = (release / f"{assignment}.ipynb").read_text()
        for secret in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "autograder.hidden", "b64decode"):
            assert secret not in released, f"the released notebook contains {secret!r}"
        for private in ("hidden", "references"):
            assert not (release / "autograder" / private).exists()
        assert (release / "autograder" / "checks").is_dir()

        with Gradebook(db_url(course), COURSE_ID) as gb:
            for student in STUDENTS:
                gb.update_or_create_student(student)
        for student, path in sample_paths(assignment).items():
            target = course / "submitted" / student / assignment / f"{assignment}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(as_nbgrader_submission(source_nb, release_nb, nbformat.read(path, as_version=4)), target)
        nbgrader(course, "autograde", assignment, "--force")
        ours = ours_future.result()

    scores = nbgrader_scores(course, assignment)
    policy = shipped_gpu_policy(assignment)
    manual = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in source_nb.cells
              if c.metadata.get("nbgrader", {}).get("solution") and c.metadata["nbgrader"].get("grade")}
    for student in STUDENTS:
        expected = in_kernel_points(ours[student], policy)
        got = scores[student]
        context = f"{assignment}/{student}: nbgrader {got}\n{explain(ours[student])}"
        autograded = {}
        for question, cases in expected.items():
            for case, points in cases.items():
                grade_id = case_grade_id(question, case)
                assert grade_id in got, f"no nbgrader test cell {grade_id}\n{context}"
                auto_score, max_score, _ = got[grade_id]
                case_points = next(c["points"] for c in ours[student]["questions"][question]["cases"]
                                   if c["name"] == case)
                assert max_score == pytest.approx(case_points), context
                assert auto_score == pytest.approx(points), f"{grade_id}\n{context}"
                autograded[grade_id] = auto_score
        # Per question and in total, as a gradebook export would add them up.
        for question, cases in expected.items():
            got_question = sum(autograded[case_grade_id(question, c)] for c in cases)
            assert got_question == pytest.approx(sum(cases.values())), f"{question}\n{context}"
        # Nothing else is autograded; written answers are worth the question's points.
        assert set(got) == set(autograded) | set(manual), context
        for grade_id, points in manual.items():
            assert got[grade_id][1] == pytest.approx(points), context
    assert sum(scores["full"][g][0] for g in scores["full"] if g not in manual) > 0
