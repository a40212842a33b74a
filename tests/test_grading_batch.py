"""The TA's command on a real batch: killed halfway and started again, a changed submission,
--force, regrading one student, and file names that only differ in odd characters.

Everything goes through `python -m autograder grade` in a subprocess, as a TA runs it.
"""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests import notebooks

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "ssm_forward_cpu"
SAMPLES = ROOT / "data" / "sample_submissions" / ASSIGNMENT
SLOW_MARK = "sleep 25.25"  # pgrep finds the slow notebook's child process by this


def grade(subs, out, *extra, timeout=600):
    command = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, *map(str, subs), "--out", str(out),
               "--workers", "2", "--timeout", "120", "--quiet", *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def rows(out):
    with open(out / "grades.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert table[0]["file"] == "points-per-question"
    return {r["file"]: r for r in table[1:]}


def stamps(out):
    """{file label: modification time of its saved result}; every result must be whole JSON."""
    found = {}
    for path in (out / "results").glob("*.json"):
        found[json.loads(path.read_text())["file"]] = path.stat().st_mtime_ns
    return found


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    subs = folder / "submissions"
    subs.mkdir()
    slow = notebooks.append_cells(nbformat.read(SAMPLES / "full.ipynb", as_version=4),
                                  f"import subprocess\nsubprocess.run({SLOW_MARK.split()!r})", at=2)
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
               "--workers", "2", "--timeout", "120", "--quiet"]
    grader = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    give_up = time.monotonic() + 300
    while len(stamps(out) if (out / "results").exists() else {}) < 3:
        assert grader.poll() is None, "the batch ended before it could be interrupted"
        assert time.monotonic() < give_up, "no results appeared"
        time.sleep(0.2)
    os.killpg(grader.pid, signal.SIGKILL)  # the TA's laptop goes to sleep, or a Ctrl-\
    grader.wait()
    before = stamps(out)
    assert "0_slow.ipynb" not in before, "the slow notebook finished before the kill; the test proves nothing"
    time.sleep(2)
    left = subprocess.run(["pgrep", "-f", SLOW_MARK], capture_output=True, text=True).stdout
    assert not left.strip(), "a notebook of the killed batch is still running"

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


def test_a_changed_submission_is_regraded_and_only_that_one(batch):
    subs, out = graded(batch)
    before = stamps(out)
    shutil.copy(SAMPLES / "full.ipynb", subs / "blank.ipynb")  # the student resubmits, now finished
    grade([subs], out)
    after = stamps(out)
    assert after["blank.ipynb"] != before["blank.ipynb"]
    assert {k: v for k, v in after.items() if k != "blank.ipynb"} == \
        {k: v for k, v in before.items() if k != "blank.ipynb"}
    table = rows(out)
    assert table["blank.ipynb"]["total_points_earned"] == table["full.ipynb"]["total_points_earned"]


def test_regrading_one_student_keeps_the_class_in_the_csv(batch):
    subs, out = graded(batch)
    before = rows(out)
    grade([subs / "partial.ipynb"], out, "--force")
    after = rows(out)
    assert set(after) == set(before), "regrading one file dropped the other rows"
    assert after == before, "regrading a file that did not change changed the grades"
    assert (out / "summary.md").read_text().startswith("# Grading summary\n\n6 submissions")


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
