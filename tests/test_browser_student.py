"""The student's path in a real browser: JupyterLab in headless Chromium (see tests/jupyterlab_harness.py).

Per notebook, as a student would: Run All on the handed-out notebook (stubs say what to implement
first, nothing else fails); the reference answers typed in, Restart Kernel and Run All Cells… (every
public check passes, every figure shows); the submit cell before saving (it names the unsaved run);
save and submit (the zip grades to full marks). A screenshot of the page is left in the test's
temporary folder. Select these tests with `-m browser`, leave them out with `-m "not browser"`.
The student's path runs on one notebook unless FULL=1 (then on all four).
"""
import csv
import functools
import http.server
import shutil
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from autograder import assignments
from autograder.assignments import ROOT
from tests import jupyterlab_harness as harness
from tests.conftest import one_or_all

REASON = harness.chromium_missing_reason()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(REASON is not None, reason=f"browser tests skipped: {REASON}")]
# A minute or more each: one notebook by default (the GPU assignment's, graded on a CPU with its
# CUDA-only tests left out; the other browser tests use ssm_forward_cpu's), all four with FULL=1.
ASSIGNMENTS = one_or_all("ssm_forward_gpu")
TIMINGS = {}


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = harness.launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    """One JupyterLab for the module, serving a student's copy of the course."""
    root = tmp_path_factory.mktemp("student") / "course"
    notebooks = harness.student_layout(root, ROOT)
    with harness.JupyterLab(root) as lab:
        yield lab, notebooks


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    yield context.new_page()
    context.close()


def check_cells(cells):
    return [c for c in cells if c["type"] == "code" and c["source"].strip().startswith("grader.check(")]


def grade_to_full_marks(assignment, archive, out):
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", assignment, str(archive), "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rows = {row["file"]: row for row in csv.DictReader(open(out / "grades.csv"))}
    possible, row = rows["points-per-question"], rows[archive.name]
    assert row["grading_status"].startswith("Completed"), row  # CUDA-only tests are left out on a CPU
    assert float(row["total_points_earned"]) == float(possible["total_points_earned"]) > 0, (row, possible)
    return row


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_path_in_jupyterlab(assignment, student_lab, page, tmp_path):
    lab, notebooks = student_lab
    spec = assignments.Assignment(assignment)
    lab_page = harness.LabPage(page, lab, f"notebooks/{assignment}.ipynb")

    # 1. as handed out: the checks fail on the stubs, cells that need a stub say which question is first
    lab_page.restart_and_run_all()
    cells = lab_page.cells()
    lab_page.screenshot(tmp_path / f"{assignment}-handed-out.png")
    assert harness.errors(cells) == [], [f"cell {i}: {e['ename']}: {e['evalue']}" for i, e in harness.errors(cells)]
    assert harness.problems(cells, expect_figures=False) == []
    for cell in check_cells(cells):
        assert "❌" in cell["text"], cell["text"][:500]
    assert any("first (question" in c["text"] for c in cells), "no cell named the question to do first"
    assert not [c["index"] for c in cells if "Traceback" in c["text"]]
    assert "Not submitted" in cells[-1]["text"] and "still a stub" in cells[-1]["text"]

    # 2. the reference answers typed in, then Restart Kernel and Run All Cells…
    lab_page.set_sources(harness.reference_sources(spec))
    seconds = lab_page.restart_and_run_all()
    TIMINGS[assignment] = seconds
    print(f"\n{assignment}: Restart Kernel and Run All Cells… with the reference answers took {seconds:.0f} s")
    cells = lab_page.cells()
    lab_page.screenshot(tmp_path / f"{assignment}-answered.png")
    assert harness.errors(cells) == [], [f"cell {i}: {e['ename']}: {e['evalue']}" for i, e in harness.errors(cells)]
    assert harness.problems(cells) == []
    assert harness.figure_cells(cells), "no figure cell found: the figure check would check nothing"
    for cell in check_cells(cells):
        assert "passed" in cell["text"] and "❌" not in cell["text"], cell["text"][:800]
    # the run is not saved yet: the submit cell (run by Run All) must say so, not blame the student's run
    submit_text = cells[-1]["text"]
    assert "Not submitted" in submit_text and "older than this run" in submit_text and "save" in submit_text
    assert "never run" not in submit_text and "PosixPath" not in submit_text

    # 3. save, run the submit cell: the zip holds the saved notebook and grades to full marks
    archive = harness.submit(lab_page, notebooks, assignment)
    text = lab_page.cells()[-1]["text"]
    assert "Upload this zip file" in text and "PosixPath" not in text, text
    with zipfile.ZipFile(archive) as z:
        assert z.namelist() == [f"{assignment}.ipynb"]
    grade_to_full_marks(assignment, archive, tmp_path / "graded")

    # 4. the whole page, for a person to look at
    lab_page.screenshot(tmp_path / f"{assignment}-submitted.png")
    assert harness.problems(lab_page.cells()) == []


def test_harness_catches_a_broken_figure_and_a_submit_cell_that_cannot_find_the_notebook(student_lab, page):
    lab, notebooks = student_lab
    spec = assignments.Assignment("ssm_forward_cpu")
    shutil.copy(spec.student, notebooks / "broken.ipynb")
    lab_page = harness.LabPage(page, lab, "notebooks/broken.ipynb")
    sources = harness.reference_sources(spec)
    cells = lab_page.cells()
    figures = sorted(harness.figure_cells(cells))
    quiet, failing = figures[0], figures[1]
    sources[quiet] = cells[quiet]["source"].replace("plt.show()", "plt.close(fig)")  # draws, never shows
    sources[failing] = cells[failing]["source"] + "\nax.plot([1, 2], [1, 2, 3])"  # raises inside matplotlib
    submit_index = max(c["index"] for c in cells if c["type"] == "code")
    sources[submit_index] = cells[submit_index]["source"].replace("namespace=globals(),",
                                                                 "namespace=globals(), notebook_path='nowhere.ipynb',")
    lab_page.set_sources(sources)
    lab_page.restart_and_run_all()
    found = harness.problems(lab_page.cells())
    assert any(line.startswith(f"cell {quiet}: no figure shown") for line in found), found
    assert any(line.startswith(f"cell {failing}: a traceback from inside a library") for line in found), found
    # Run All stopped at the failing cell: run the rest, so that only the notebook's path is wrong
    for index in [c["index"] for c in lab_page.cells() if c["type"] == "code" and failing < c["index"] < submit_index]:
        lab_page.run_cell(index)
    with pytest.raises(harness.SubmitFailed, match="could not find nowhere.ipynb"):
        harness.submit(lab_page, notebooks, "ssm_forward_cpu")


@pytest.fixture
def course_site(tmp_path):
    """The repository's public files served over HTTP, standing in for the course URL."""
    site = tmp_path / "site"
    (site / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "course_public.zip", site / "notebooks" / "course_public.zip")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


def test_notebook_alone_downloads_the_course_bundle_in_jupyterlab(course_site, page, tmp_path):
    """Colab-like: the notebook alone in an empty folder; its setup cell fetches the checks library."""
    url, requests = course_site
    spec = assignments.Assignment("ssm_forward_cpu")
    folder = tmp_path / "alone"
    folder.mkdir()
    shutil.copy(spec.student, folder / "ssm_forward_cpu.ipynb")
    with harness.JupyterLab(folder, env={"SEQMOD_COURSE_URL": url}) as lab:
        lab_page = harness.LabPage(page, lab, "ssm_forward_cpu.ipynb")
        lab_page.set_sources(harness.reference_sources(spec))
        start = time.monotonic()
        lab_page.restart_and_run_all()
        print(f"\nnotebook alone: Restart Kernel and Run All Cells… took {time.monotonic() - start:.0f} s")
        cells = lab_page.cells()
        lab_page.screenshot(tmp_path / "alone.png")
    assert any("course_public.zip" in r for r in requests), "the setup cell never asked the course URL"
    assert (folder / "seqmod_course" / "autograder" / "checks" / "core.py").exists()
    assert any("Downloading the course's checks library" in c["text"] for c in cells)
    assert harness.errors(cells) == [] and harness.problems(cells) == []
    assert check_cells(cells)
    for cell in check_cells(cells):
        assert "passed" in cell["text"] and "❌" not in cell["text"], cell["text"][:800]
