"""The TA's command on a real batch: killed halfway and started again, a changed submission,
--force, regrading one student, and file names that only differ in odd characters.

Everything goes through `python -m autograder grade` in a subprocess, as a TA runs it.
"""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from functools import cache

import nbformat
import pytest

from autograder.assignments import ROOT
from autograder.testfiles import load_questions
from tests import budgets, notebooks

ASSIGNMENT = "ssm_forward_cpu"
SAMPLES = ROOT / "data" / "sample_submissions" / ASSIGNMENT


@cache
def scale() -> float:
    """The load factor, measured when this module's first test runs (tests/budgets.py)."""
    return budgets.scale()


def timeout_arg() -> str:
    """--timeout for the batches: enough for every notebook here on an idle machine, scaled."""
    return str(budgets.budget(120, scale()))


def slow_mark() -> str:
    """The slow notebook's child process (pgrep finds it by this): it must outlast three other
    gradings, whatever the load, and be told apart from another suite's on the same machine."""
    return f"sleep {budgets.budget(25, scale())}.{os.getpid()}"  # the pid: unique to this run


def grade(subs, out, *extra, timeout=600):
    command = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, *map(str, subs), "--out", str(out),
               "--workers", "2", "--timeout", timeout_arg(), "--quiet", *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=budgets.budget(timeout, scale()))
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def rows(out):
    with open(out / "grades.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert table[0]["file"] == "points-per-question"
    return {r["file"]: r for r in table[1:]}


def stamps(out):
    """{file label: modification time of its saved result} for the files that still exist;
    every result must be whole JSON."""
    found = {}
    for path in (out / "results").glob("*.json"):
        row = json.loads(path.read_text())
        if os.path.exists(row["source"]):
            found[row["file"]] = path.stat().st_mtime_ns
    return found


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    subs = folder / "submissions"
    subs.mkdir()
    slow = notebooks.append_cells(nbformat.read(SAMPLES / "full.ipynb", as_version=4),
                                  f"import subprocess\nsubprocess.run({slow_mark().split()!r})", at=2)
    notebooks.write(slow, subs / "0_slow.ipynb")  # sorted first: it holds one worker while the rest finish
    for name, sample in [("blank.ipynb", "blank"), ("full.ipynb", "full"), ("partial.ipynb", "partial"),
                         ("a b.ipynb", "partial"), ("a_b.ipynb", "blank")]:
        shutil.copy(SAMPLES / f"{sample}.ipynb", subs / name)
    return folder, subs


def graded(batch):
    """(submissions, out) once the batch has been graded (tests also run on their own)."""
    folder, subs = batch
    if not (folder / "out" / "grades.csv").exists():
        grade([subs], folder / "out")
    return subs, folder / "out"


def test_a_batch_killed_halfway_finishes_without_regrading(batch):
    folder, subs = batch
    out = folder / "out"
    command = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(subs), "--out", str(out),
               "--workers", "2", "--timeout", timeout_arg(), "--quiet"]
    grader = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    give_up = time.monotonic() + budgets.budget(300, scale())
    while len(stamps(out) if (out / "results").exists() else {}) < 3:
        assert grader.poll() is None, "the batch ended before it could be interrupted"
        assert time.monotonic() < give_up, "no results appeared"
        time.sleep(0.2)
    os.killpg(grader.pid, signal.SIGKILL)  # the TA's laptop goes to sleep, or a Ctrl-\
    grader.wait()
    before = stamps(out)
    assert "0_slow.ipynb" not in before, "the slow notebook finished before the kill; the test proves nothing"
    time.sleep(2)
    left = subprocess.run(["pgrep", "-f", slow_mark()], capture_output=True, text=True).stdout
    assert not left.strip(), "a notebook of the killed batch is still running"

    # The unfinished row is graded on the restart whatever it holds: without the sleep, the test
    # does not wait for it a second time.
    shutil.copy(SAMPLES / "full.ipynb", subs / "0_slow.ipynb")
    grade([subs], out)
    after = stamps(out)
    assert set(after) == {p.name for p in subs.iterdir()}
    for label, stamp in before.items():
        assert after[label] == stamp, f"{label} was graded again after the restart"
    table = rows(out)
    assert len(table) == 6
    possible = float(table["full.ipynb"]["total_points_earned"])
    assert possible > 0 and float(table["0_slow.ipynb"]["total_points_earned"]) == possible
    assert float(table["blank.ipynb"]["total_points_earned"]) == 0
    (subs / "0_slow.ipynb").unlink()  # the later tests need no slow notebook; its row goes with it


def test_a_changed_submission_is_regraded_and_only_that_one(batch):
    """So is a row that ended in a grader error (not the student's doing)."""
    subs, out = graded(batch)
    before = stamps(out)
    shutil.copy(SAMPLES / "full.ipynb", subs / "blank.ipynb")  # the student resubmits, now finished
    [unlucky] = [p for p in (out / "results").glob("*.json") if json.loads(p.read_text())["file"] == "partial.ipynb"]
    row = json.loads(unlucky.read_text())
    unlucky.write_text(json.dumps(dict(row, status="grader error: the judge process died")))
    before["partial.ipynb"] = stamps(out)["partial.ipynb"]
    grade([subs], out)
    after = stamps(out)
    regraded = {"blank.ipynb", "partial.ipynb"}
    assert all(after[label] != before[label] for label in regraded)
    assert {k: v for k, v in after.items() if k not in regraded} == \
        {k: v for k, v in before.items() if k not in regraded}
    table = rows(out)
    assert table["blank.ipynb"]["total_points_earned"] == table["full.ipynb"]["total_points_earned"]
    assert table["partial.ipynb"]["grading_status"].startswith("Completed")


def test_regrading_one_student_keeps_the_class_in_the_csv(batch):
    subs, out = graded(batch)
    before = rows(out)
    grade([subs / "partial.ipynb"], out, "--force")
    after = rows(out)
    assert set(after) == set(before), "regrading one file dropped the other rows"
    assert after == before, "regrading a file that did not change changed the grades"
    count = len(list(subs.iterdir()))
    assert (out / "summary.md").read_text().startswith(f"# Grading summary\n\n{count} submissions")


def test_force_regrades_everything(batch):
    subs, out = graded(batch)
    before = stamps(out)
    grade([subs], out, "--force")
    after = stamps(out)
    assert set(after) == set(before)
    assert all(after[label] != before[label] for label in before)


def test_names_that_differ_only_in_odd_characters_keep_their_own_feedback(batch):
    subs, out = graded(batch)
    table = rows(out)
    assert float(table["a b.ipynb"]["total_points_earned"]) > 0  # a copy of the partial sample
    assert float(table["a_b.ipynb"]["total_points_earned"]) == 0  # a copy of the blank one
    headers = {}
    for path in (out / "feedback").glob("*.md"):
        first = path.read_text().splitlines()[0]
        headers[first.split("(", 1)[1].rstrip(")")] = path.read_text()
    assert set(headers) == {p.name for p in subs.iterdir()}, "one student's feedback overwrote another's"
    assert f"**Score: {table['a b.ipynb']['total_points_earned']} /" in headers["a b.ipynb"]
    assert "**Score: 0 /" in headers["a_b.ipynb"]


INJECTION = '''
def ssm_kernel(A, B, C, D, L):
    raise ValueError("## Injected heading\\n<script>alert(1)</script> [click](http://evil.example/)")
'''


@pytest.fixture(scope="module")
def odd_inputs(tmp_path_factory):
    """Inputs as they come from a learning platform: odd names, zips with extra files, junk."""
    folder = tmp_path_factory.mktemp("odd")
    subs = folder / "submissions"
    subs.mkdir()
    blank, full = SAMPLES / "blank.ipynb", SAMPLES / "full.ipynb"
    shutil.copy(blank, os.fsdecode(bytes(subs) + b"/caf\xe9.ipynb"))  # a Latin-1 name from an old zip tool
    shutil.copy(blank, subs / "UPPER.IPYNB")
    shutil.copy(blank, subs / "=cmd.ipynb")
    (subs / "list.ipynb").write_text("[]")
    with zipfile.ZipFile(subs / "two_notebooks.zip", "w") as archive:
        archive.write(blank, "Untitled.ipynb")
        archive.write(full, f"{ASSIGNMENT}.ipynb")
    with zipfile.ZipFile(subs / "from_a_mac.zip", "w") as archive:
        archive.writestr("._hw.ipynb", b"\x00\x05\x16\x07 resource fork")
        archive.write(full, "hw.ipynb")
    injected = notebooks.append_cells(nbformat.read(blank, as_version=4), INJECTION,
                                      "raise RuntimeError('``` # heading from a cell <b>bold</b>')")
    notebooks.write(injected, subs / "inject.ipynb")
    done = grade([subs], folder / "out")
    return subs, folder / "out", done


def test_every_odd_input_gets_its_row(odd_inputs):
    subs, out, done = odd_inputs
    table = rows(out)
    assert len(table) == len(list(subs.iterdir())) == 7
    assert "caf\\xe9.ipynb" in table and "UPPER.IPYNB" in table
    assert table["list.ipynb"]["grading_status"] == "not a notebook: the file is JSON, but not a Jupyter notebook"
    assert "'=cmd.ipynb" in table, "a file name a spreadsheet would run as a formula"


def test_zips_grade_the_assignments_notebook(odd_inputs):
    _, out, _ = odd_inputs
    table = rows(out)
    full = table["two_notebooks.zip"]
    assert float(full["total_points_earned"]) > 0 and full["percent_correct"] == "1"
    assert f"the zip file holds 2 notebooks; graded {ASSIGNMENT}.ipynb" in full["grading_status"]
    assert table["from_a_mac.zip"]["percent_correct"] == "1"


def test_feedback_shows_student_text_as_text(odd_inputs):
    _, out, _ = odd_inputs
    import mistune  # the markdown renderer nbconvert uses
    [text] = [p.read_text() for p in (out / "feedback").glob("inject*.md")]
    html = mistune.html(text)
    assert "<script" not in html and "<b>" not in html and "<a " not in html
    assert not re.search(r"<h\d>[^<]*(Injected|heading from)", html), "a student's text became a heading"
    assert "Injected heading" in html and "heading from a cell" in html  # still shown, as text


def test_rows_follow_the_files_across_runs(tmp_path):
    """Regrading one file keeps its label; a file that is gone loses its row; another student
    with the same file name keeps theirs."""
    subs = tmp_path / "class"
    (subs / "sub").mkdir(parents=True)
    shutil.copy(SAMPLES / "blank.ipynb", subs / "b1.ipynb")
    shutil.copy(SAMPLES / "blank.ipynb", subs / "b2.ipynb")
    shutil.copy(SAMPLES / "partial.ipynb", subs / "sub" / "b1.ipynb")
    out = tmp_path / "out"
    grade([subs], out)
    first = rows(out)
    assert set(first) == {"b1.ipynb", "b2.ipynb", "sub/b1.ipynb"}
    (subs / "b2.ipynb").unlink()
    grade([subs / "sub" / "b1.ipynb"], out, "--force")
    second = rows(out)
    assert set(second) == {"b1.ipynb", "sub/b1.ipynb"}
    assert second["b1.ipynb"] == first["b1.ipynb"] and second["sub/b1.ipynb"] == first["sub/b1.ipynb"]


def test_nothing_to_grade_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    command = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(tmp_path / "empty"),
               "--out", str(tmp_path / "out"), "--quiet"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=budgets.budget(120, scale()))
    assert done.returncode == 2 and "no submissions found" in done.stderr
    assert "warning: no .ipynb or .zip files in" in done.stderr
    header = (tmp_path / "out" / "grades.csv").read_text().splitlines()
    assert header[0].startswith("file,q1,q2,q3,q4,q9,total_points_earned")
    assert header[1].startswith("points-per-question")


def test_rows_that_could_not_run_count_out_of_the_same_total(tmp_path):
    """Without a GPU (policy 'exclude'), an empty file and a graded notebook are out of the same
    points, and the points row says so."""
    from autograder import assignments
    if assignments.cuda_available():
        pytest.skip("with a GPU nothing is left out")
    subs = tmp_path / "class"
    subs.mkdir()
    (subs / "a_empty.ipynb").write_bytes(b"")
    shutil.copy(ROOT / "notebooks" / "ssm_forward_gpu.ipynb", subs / "b_blank.ipynb")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "autograder", "grade", "ssm_forward_gpu", str(subs), "--out", str(out),
               "--quiet", "--gpu-policy", "exclude"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=budgets.budget(300, scale()))
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out / "grades.csv", newline="") as handle:
        table = list(csv.reader(handle))
    header, points, *body = table
    total = header.index("total_points_earned")
    graded = [json.loads(p.read_text()) for p in (out / "results").glob("*.json")]
    [possible] = [r["possible"] for r in graded if r["file"] == "b_blank.ipynb"]
    assert float(points[total]) == possible < sum(q.possible for q in load_questions(
        ROOT / "autograder" / "zips" / "ssm_forward_gpu.zip")), "the CUDA tests should be left out"
    [empty] = [p.read_text() for p in (out / "feedback").glob("a_empty*.md")]
    assert f"**Score: 0 / {possible:g}**" in empty
    assert "CUDA test(s) not run" in body[1][-1] and "Completed (" in body[1][-1] and ") (" not in body[1][-1]
