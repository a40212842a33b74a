"""What tests/test_otter_zip.py and tests/test_nbgrader.py share: the sample submissions, the
course grader's results on them (graded once per session), and a Jupyter kernel that is this venv.

Otter and nbgrader run the tests in the student's kernel. There a CUDA-only check follows the
shipped GPU policy (`autograder/checks/gpu_policy.txt`): on a machine without a GPU, 'exclude'
lets the test pass (it cannot be left out of otter's or nbgrader's total), 'required' fails it.
The course grader instead reports such a test as not run. `in_kernel_points` turns the course
grader's result into what an in-kernel grader must give, so the comparison is exact either way.

Both comparisons run on one assignment (`EQUIVALENCE_DEFAULT`) unless FULL=1 is set or
SEQMOD_ASSIGNMENTS names assignments: then on every selected one.
"""
import atexit
import json
import os
import shutil
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import nbformat

from autograder.assignments import ROOT
from autograder.grade import grade_all
from autograder.limits import Limits
from tests import budgets
from tests.conftest import WORKERS, one_or_all, selected_assignments
from tools.make_samples import filled

SPECS = {spec.id: spec for spec in selected_assignments()}
# The CUDA assignment: its CUDA-only tests exercise the GPU policy on a machine without a GPU.
EQUIVALENCE_DEFAULT = "ssm_forward_gpu"
IDS = one_or_all(EQUIVALENCE_DEFAULT)
LABELS = ("full", "partial", "blank")
# Generous: a bound against hangs, never a speed requirement.
PROCESS_TIMEOUT_S = 1200

SCRATCH = Path(tempfile.mkdtemp(prefix="seqmod-ingrader-"))
atexit.register(shutil.rmtree, SCRATCH, True)
_lock = threading.Lock()
_ours = {}


def sample_paths(assignment: str) -> dict:
    """{label: notebook}: data/sample_submissions/<id>/ when there, else made by make_samples."""
    shipped = {label: ROOT / "data" / "sample_submissions" / assignment / f"{label}.ipynb" for label in LABELS}
    if all(path.exists() for path in shipped.values()):
        return shipped
    folder = SCRATCH / "samples" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for label, fraction in zip(LABELS, (1.0, 0.5, 0.0)):
        made[label] = folder / f"{label}.ipynb"
        nbformat.write(filled(SPECS[assignment], fraction), made[label])
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
                               workers=WORKERS, limits=Limits(timeout_s=budgets.budget(240)), force=True)
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
