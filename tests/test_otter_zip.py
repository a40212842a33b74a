"""Gradescope's path: otter's own runner (`otter run`, the program Gradescope runs, without Docker)
on our autograder zips gives the course grader's scores, question by question.

Also holds what this file and tests/test_nbgrader.py share: the sample submissions, the course
grader's results on them (graded once per session), and a Jupyter kernel that is this venv.

Otter and nbgrader run the tests in the student's kernel. There a CUDA-only check follows the
shipped GPU policy (`autograder/checks/gpu_policy.txt`): on a machine without a GPU, 'exclude'
lets the test pass (it cannot be left out of otter's or nbgrader's total), 'required' fails it.
The course grader instead reports such a test as not run. `in_kernel_points` turns the course
grader's result into what an in-kernel grader must give, so the comparison is exact either way.
"""
import atexit
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from autograder.grade import grade_all
from autograder.sandbox import Limits
from tests.conftest import WORKERS, selected_assignments

ROOT = Path(__file__).resolve().parent.parent
IDS = [spec.id for spec in selected_assignments()]
SPECS = {spec.id: spec for spec in selected_assignments()}
LABELS = ("full", "partial", "blank")
# Generous: a bound against hangs, never a speed requirement.
PROCESS_TIMEOUT_S = 1200

SCRATCH = Path(tempfile.mkdtemp(prefix="seqmod-ingrader-"))
atexit.register(shutil.rmtree, SCRATCH, True)
_lock = threading.Lock()
_ours = {}


# ---------------------------------------------------------------------------------------------
# shared with tests/test_nbgrader.py


def sample_paths(assignment: str) -> dict:
    """{label: notebook}: data/sample_submissions/<id>/ when there, else made by make_samples."""
    shipped = {label: ROOT / "data" / "sample_submissions" / assignment / f"{label}.ipynb" for label in LABELS}
    if all(path.exists() for path in shipped.values()):
        return shipped
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "tools" / "make_samples.py")
    make_samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_samples)
    folder = SCRATCH / "samples" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for label, fraction in zip(LABELS, (1.0, 0.5, 0.0)):
        made[label] = folder / f"{label}.ipynb"
        nbformat.write(make_samples.filled(SPECS[assignment], fraction), made[label])
    return made


def our_results(assignment: str) -> dict:
    """{label: result} from the course grader on the samples; graded once per session."""
    with _lock:
        if assignment not in _ours:
            batch = SCRATCH / "ours" / assignment / "batch"
            batch.mkdir(parents=True, exist_ok=True)
            for label, path in sample_paths(assignment).items():
                shutil.copy(path, batch / f"{label}.ipynb")
            graded = grade_all(assignment, [batch], SCRATCH / "ours" / assignment / "out",
                               workers=WORKERS, limits=Limits(timeout_s=240), force=True)
            by_file = {r["file"]: r for r in graded}
            _ours[assignment] = {label: by_file[f"{label}.ipynb"] for label in LABELS}
        return _ours[assignment]


def warm_our_results(ids):
    """Grade in the background; a broken assignment fails its own test later, not this."""
    for assignment in ids:
        try:
            our_results(assignment)
        except (Exception, SystemExit):  # noqa: BLE001 - our_results raises again inside that test
            pass


def shipped_gpu_policy(assignment: str) -> str:
    """The policy `autograder.checks.core.gpu_policy()` sees when the zip's files are installed."""
    with zipfile.ZipFile(SPECS[assignment].zip_path) as archive:
        name = "files/autograder/checks/gpu_policy.txt"
        if name in archive.namelist():
            return archive.read(name).decode().strip()
    return os.environ.get("SEQMOD_GPU_POLICY", "exclude")


def in_kernel_points(result: dict, policy: str) -> dict:
    """{question: {case: points}} an in-kernel grader must award for the course grader's result."""
    expected = {}
    for question, data in result["questions"].items():
        expected[question] = {}
        for case in data["cases"]:
            passes = case["passed"] or (case.get("skipped", False) and policy == "exclude")
            expected[question][case["name"]] = case["points"] if passes else 0.0
    return expected


def kernel_env() -> dict:
    """Environment for otter and nbgrader: the `python3` kernel is this venv's interpreter (a
    kernelspec of our own comes first on JUPYTER_PATH), no user Jupyter or IPython config, and
    grading mode (the notebooks' optional sweeps stay short, as under the course grader)."""
    jupyter = SCRATCH / "jupyter"
    kernel = jupyter / "kernels" / "python3"
    kernel.mkdir(parents=True, exist_ok=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (seqmod venv)", "language": "python"}))
    (SCRATCH / "jupyter-config").mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(JUPYTER_PATH=str(jupyter), JUPYTER_CONFIG_DIR=str(SCRATCH / "jupyter-config"),
               IPYTHONDIR=str(SCRATCH / "ipython"), SEQMOD_GRADING="1",
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    return env


def explain(result: dict) -> str:
    lines = [f"course grader: {result['file']} {result['total']}/{result['possible']} ({result['status']})"]
    for question, data in sorted(result["questions"].items()):
        for case in data["cases"]:
            mark = "pass" if case["passed"] else ("not run" if case.get("skipped") else "FAIL")
            lines.append(f"  {question}/{case['name']} ({case['points']:g}): {mark}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# otter run


def run_otter(assignment: str, label: str) -> dict:
    """Otter's results.json for one sample (Gradescope's format), or the reason it has none."""
    out = SCRATCH / "otter" / assignment / label
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(SPECS[assignment].zip_path),
               "-o", str(out), str(sample_paths(assignment)[label])]
    try:
        done = subprocess.run(command, cwd=out, env=kernel_env(), capture_output=True, text=True,
                              timeout=PROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"otter run did not finish in {PROCESS_TIMEOUT_S} s"}
    results = out / "results.json"
    if done.returncode != 0 or not results.exists():
        return {"error": f"otter run exited with {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"}
    return {"results": json.loads(results.read_text()), "stdout": done.stdout[-3000:]}


@pytest.fixture(scope="module")
def otter_runs():
    """Otter on the full and blank sample of every assignment, two processes at a time; the
    course grader grades the same samples meanwhile."""
    jobs = [(assignment, label) for assignment in IDS for label in ("full", "blank")]
    with ThreadPoolExecutor(max_workers=1) as ours_pool, ThreadPoolExecutor(max_workers=2) as otter_pool:
        ours_pool.submit(warm_our_results, IDS)
        runs = dict(zip(jobs, otter_pool.map(lambda job: run_otter(*job), jobs)))
    return runs


def otter_scores(run: dict) -> dict:
    """{question: (score, max_score)} from otter's Gradescope results."""
    assert "results" in run, run.get("error")
    return {test["name"]: (float(test["score"]), float(test["max_score"]))
            for test in run["results"]["tests"] if "max_score" in test}


@pytest.mark.parametrize("assignment", IDS)
def test_otter_run_agrees_with_course_grader(otter_runs, assignment):
    policy = shipped_gpu_policy(assignment)
    for label in ("full", "blank"):
        ours = our_results(assignment)[label]
        expected = in_kernel_points(ours, policy)
        scores = otter_scores(otter_runs[(assignment, label)])
        context = f"{assignment}/{label}: otter {scores}\n{explain(ours)}"
        assert set(scores) == set(expected), context
        for question, cases in expected.items():
            score, max_score = scores[question]
            assert score == pytest.approx(sum(cases.values())), context
            # every test case counts in otter's total, including those the course grader skipped
            assert max_score == pytest.approx(sum(c["points"] for c in ours["questions"][question]["cases"])), context


@pytest.mark.parametrize("assignment", IDS)
def test_otter_run_gives_full_marks_and_zero(otter_runs, assignment):
    """Full marks for the full sample; zero for the blank one, except CUDA-only tests that the
    shipped policy 'exclude' lets pass on a machine without a GPU (reported, not hidden)."""
    policy = shipped_gpu_policy(assignment)
    full = otter_scores(otter_runs[(assignment, "full")])
    possible = sum(m for _, m in full.values())
    assert possible > 0 and sum(s for s, _ in full.values()) == pytest.approx(possible), full
    blank = otter_scores(otter_runs[(assignment, "blank")])
    ours = our_results(assignment)["blank"]
    free = sum(c["points"] for q in ours["questions"].values() for c in q["cases"]
               if c.get("skipped") and policy == "exclude")
    assert sum(s for s, _ in blank.values()) == pytest.approx(free), (blank, explain(ours))
