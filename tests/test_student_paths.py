"""Students' paths: a notebook opened alone on a fresh runtime (Colab, simulated), and submitting.

Colab is simulated here without internet: a clean virtual environment whose packages stand in
for the runtime's preinstalled ones, a working folder holding only the notebook, and a local copy
of the course repository served over HTTP as the course URL.
"""
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import assignments
from autograder.assignments import ROOT
from autograder.checks.notebook import missing_requirements
from autograder.checks.submit import NotReady, check_run_order
from autograder.grade import grade_all
from tools.make_samples import filled

ASSIGNMENT = "ssm_forward_cpu"


@pytest.fixture(scope="module")
def course_server(tmp_path_factory):
    """A local copy of the repository's public files, served like the course URL."""
    site = tmp_path_factory.mktemp("course-site")
    (site / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "course_public.zip", site / "notebooks" / "course_public.zip")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


@pytest.fixture(scope="module")
def fresh_runtime(tmp_path_factory, course_server):
    """A clean venv with a kernel spec; its packages come from the project's venv (as Colab's do)."""
    base = tmp_path_factory.mktemp("runtime")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], check=True)
    python = base / "venv" / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    spec_dir = base / "jupyter" / "kernels" / "fresh-runtime"
    spec_dir.mkdir(parents=True)
    url, _ = course_server
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh runtime", "language": "python",
        "env": {"SEQMOD_COURSE_URL": url, "SEQMOD_GRADING": "1", "PYTHONPATH": ""},
    }))
    return base


def run_alone(nb, runtime, folder: Path):
    """Execute `nb` as the only file in `folder`, in the fresh runtime's kernel."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ASSIGNMENT}.ipynb"
    nbformat.write(nb, path)
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(runtime / "jupyter")
    try:
        client = NotebookClient(nb, kernel_name="fresh-runtime", timeout=600, allow_errors=True,
                                resources={"metadata": {"path": str(folder)}})
        client.execute()
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
    return nb


def outputs_of(cell):
    text = []
    for out in cell.get("outputs", []):
        text.append(out.get("text", "") or json.dumps(out.get("data", {})) + out.get("evalue", ""))
    return "\n".join(text)


def test_notebook_alone_fetches_the_library_and_checks_pass(fresh_runtime, course_server, tmp_path):
    spec = assignments.Assignment(ASSIGNMENT)
    nb = run_alone(filled(spec, 1.0), fresh_runtime, tmp_path / "colab")
    assert (tmp_path / "colab" / "seqmod_course" / "autograder" / "checks" / "core.py").exists()
    assert any("course_public.zip" in r for r in course_server[1]), "the notebook never asked the course URL"
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("grader.check(")]
    assert checks
    for cell in checks:
        output = outputs_of(cell)
        outputs = json.dumps([c.outputs for c in nb.cells if c.cell_type == "code"])[:3000]
        assert "passed" in output and "failed" not in output.lower(), outputs
    assert not (tmp_path / "colab" / "autograder").exists(), "the library must come from the course URL"


def test_blank_notebook_alone_shows_failing_checks(fresh_runtime, tmp_path):
    spec = assignments.Assignment(ASSIGNMENT)
    nb = run_alone(nbformat.read(spec.student, as_version=4), fresh_runtime, tmp_path / "blank")
    first_check = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("grader.check("))
    assert "still a stub" in outputs_of(first_check)


def test_missing_requirements_only_lists_absent_packages():
    text = "torch==2.13.0\notter-grader==7.0.0\n# comment\nnumpy==2.4.6\n"
    assert missing_requirements(text, installed={"torch", "numpy"}) == ["otter-grader==7.0.0"]
    assert missing_requirements(text, installed={"torch", "numpy", "otter-grader"}) == []


def notebook_with_counts(counts):
    cells = [{"cell_type": "code", "source": f"x = {i}", "execution_count": c, "outputs": [], "metadata": {}}
             for i, c in enumerate(counts)]
    return {"cells": cells}


def test_run_order_check():
    check_run_order(notebook_with_counts([1, 2, 3]))
    with pytest.raises(NotReady, match="out of order"):
        check_run_order(notebook_with_counts([1, 3, 2]))
    with pytest.raises(NotReady, match="never run"):
        check_run_order(notebook_with_counts([1, None, 2]))


@pytest.fixture
def repo_folder(tmp_path):
    """A folder inside the repository (git-ignored build/), like notebooks/ for a local student."""
    import tempfile
    (ROOT / "build").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="student-", dir=ROOT / "build"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def submit_in_kernel(nb, folder: Path):
    """Run all cells, save the notebook, run the submission cell again: what a student does."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ASSIGNMENT}.ipynb"
    client = NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    with client.setup_kernel():
        submit_index = len(nb.cells) - 1
        for index, cell in enumerate(nb.cells[:submit_index]):
            client.execute_cell(cell, index)
        nbformat.write(nb, path)
        client.execute_cell(nb.cells[submit_index], submit_index)
    return outputs_of(nb.cells[submit_index])


def test_submission_cell_refuses_stubs(repo_folder):
    spec = assignments.Assignment(ASSIGNMENT)
    output = submit_in_kernel(filled(spec, 0.5), repo_folder)
    assert "Not submitted" in output and "still a stub" in output
    assert not (repo_folder / f"{ASSIGNMENT}_submission.zip").exists()


def test_submission_cell_writes_a_zip_that_grades_full(repo_folder, tmp_path):
    spec = assignments.Assignment(ASSIGNMENT)
    output = submit_in_kernel(filled(spec, 1.0), repo_folder)
    archive = repo_folder / f"{ASSIGNMENT}_submission.zip"
    assert archive.exists(), output
    assert "Upload this zip file" in output
    with zipfile.ZipFile(archive) as z:
        assert z.namelist() == [f"{ASSIGNMENT}.ipynb"]
    [result] = grade_all(ASSIGNMENT, [archive], tmp_path / "graded", workers=1, force=True)
    assert result["total"] == result["possible"] > 0, result["status"]
