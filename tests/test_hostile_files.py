"""Hostile files and hostile text: no row past its deadline, nothing that rewrites what a TA sees.

One batch of real notebooks goes through `python -m autograder grade` as a TA runs it (progress
line on): honest submissions next to notebooks that are costly to read, a notebook whose process
sends a "failed" message full of newlines and terminal escapes, a student's exception texts of
the same kind, a zip file whose name and member name carry them, and a zip file that lists a
million files. Every sink the TA reads is then searched for control characters.
"""
import csv
import io
import json
import math
import re
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import sanitize
from autograder.assignments import ROOT
from autograder.notebook_shape import NotANotebook, minimal_notebook
from autograder.results import Outcome, Status
from autograder.submissions import MAX_ZIP_MEMBERS, load
from tests import budgets, notebooks

ASSIGNMENT = "ssm_forward_cpu"
BLANK = ROOT / "notebooks" / f"{ASSIGNMENT}.ipynb"
TIMEOUT_S = 40  # no row here needs it all; honest rows get room on a loaded machine
WORKERS = 2
# A row comes back at most this long after its time limit ran out: the judge kills the sandbox
# at the deadline, marks the remaining tests "not run", cleans up and hands the row back.
MARGIN_S = 8
FAKE_ROW = "\n\x1b[1A\x1b[2Kfake_row.ipynb      19     19  19/19  Completed\x1b[8m"
ODD_FILE = "odd" + FAKE_ROW.replace("/", " of ") + ".zip"  # a file name cannot hold "/"
GRADER_ESCAPES = (b"\r", b"\x1b[K")  # the progress line's own: back to the line start, clear the rest

SEND_FAILED = f"""
import os, wire
wire.write_message(os.fdopen(os.dup(4), "wb", buffering=0), {{"event": "failed", "error": {FAKE_ROW!r}}})
"""

RAISE_ESCAPES = """
def ssm_kernel(A, B, C, D, L):
    raise ValueError("\\x1b[2J\\x1b[H\\nall tests passed: 19/19\\r\\x07")
raise RuntimeError("top\\x1b[31m level\\n\\x1b[0m")
"""


def reference():
    return notebooks.reference_notebook(ASSIGNMENT)


def with_outputs(nb, outputs):
    """The notebook as JSON with `outputs` on its last code cell, written as Jupyter writes it
    (nbformat would refuse to write outputs this odd)."""
    data = json.loads(nbformat.writes(nb))
    data["cells"].append({"cell_type": "code", "execution_count": 1, "id": "junk", "metadata": {},
                          "outputs": outputs, "source": "1"})
    return json.dumps(data, indent=1).encode()


def zip_of(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def zip_listing_many(path: Path, count: int) -> Path:
    """A valid zip64 file whose central directory lists `count` entries (all the same empty
    file, so it takes 47 bytes per entry and no time to write)."""
    name = b"a"
    local = struct.pack(zipfile.structFileHeader, zipfile.stringFileHeader, 20, 0, 0, 0, 0, 0, 0, 0, 0,
                        len(name), 0) + name
    entry = struct.pack(zipfile.structCentralDir, zipfile.stringCentralDir, 45, 3, 45, 0, 0, 0, 0, 0,
                        0, 0, 0, len(name), 0, 0, 0, 0, 0, 0) + name
    directory_offset, directory_size = len(local), len(entry) * count
    end64_offset = directory_offset + directory_size
    end64 = struct.pack(zipfile.structEndArchive64, zipfile.stringEndArchive64, 44, 45, 45, 0, 0,
                        count, count, directory_size, directory_offset)
    locator = struct.pack(zipfile.structEndArchive64Locator, zipfile.stringEndArchive64Locator, 0,
                          end64_offset, 1)
    end = struct.pack(zipfile.structEndArchive, zipfile.stringEndArchive, 0, 0, 0xFFFF, 0xFFFF,
                      0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(path, "wb") as handle:
        handle.write(local)
        handle.write(entry * count)
        handle.write(end64 + locator + end)
    return path


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    subs = folder / "submissions"
    subs.mkdir()
    honest = nbformat.writes(reference()).encode()
    (subs / "honest.ipynb").write_bytes(honest)
    zip_of(subs / "honest_export.zip", {f"{ASSIGNMENT}.ipynb": honest, ".OTTER_LOG": b"log"})
    many_empty = with_outputs(reference(), [{}] * 200_000)
    (subs / "many_empty_outputs.ipynb").write_bytes(many_empty)
    zip_of(subs / "many_empty_outputs.zip", {f"{ASSIGNMENT}.ipynb": many_empty})
    display = [{"output_type": "display_data", "data": {"text/plain": f"x{i}"}, "metadata": {}, "extra": i}
               for i in range(60_000)]  # an extra key: schema validation checks each one slowly
    zip_of(subs / "many_display_outputs.zip", {f"{ASSIGNMENT}.ipynb": with_outputs(reference(), display)})
    notebooks.write(notebooks.append_cells(reference(), SEND_FAILED), subs / "sends_failed.ipynb")
    notebooks.write(notebooks.append_cells(nbformat.read(BLANK, as_version=4), RAISE_ESCAPES),
                    subs / "raises_escapes.ipynb")
    zip_of(subs / ODD_FILE, {f"x{FAKE_ROW}/{ASSIGNMENT}.ipynb": honest,
                                         "other.ipynb": nbformat.writes(nbformat.read(BLANK, as_version=4))})
    zip_listing_many(subs / "million_entries.zip", 1_000_000)
    out = folder / "out"
    command = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(subs), "--out", str(out),
               "--workers", str(WORKERS), "--timeout", str(TIMEOUT_S), "--force"]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=900)
    seconds = time.monotonic() - started
    print(f"hostile batch: {seconds:.1f} s for {len(list(subs.iterdir()))} submissions")
    assert done.returncode == 0, done.stderr[-3000:]
    results = {}
    for path in (out / "results").glob("*.json"):
        row = json.loads(path.read_text())
        results[row["file"]] = row
    return {"out": out, "stdout": done.stdout, "stderr": done.stderr, "results": results,
            "count": len(list(subs.iterdir())), "seconds": seconds}


def row(batch, label):
    return batch["results"][sanitize.name(label)]


def full(result):
    return result["total"] == result["possible"] > 0


def test_every_row_comes_back_within_its_time_limit(batch):
    graded = [r for r in batch["results"].values() if "started_at" in r]
    assert len(graded) == 7, sorted(batch["results"])
    print("\n".join(f"{r['returned_at'] - r['started_at']:5.1f} s  {r['file'][:40]}: {r['status'][:60]}"
                    for r in graded))
    for result in graded:
        took = result["returned_at"] - result["started_at"]
        assert took <= TIMEOUT_S + MARGIN_S, (result["file"], took, result["status"])
    # no judge is held past a deadline, so the graded rows take turns in slots of that length
    span = max(r["returned_at"] for r in graded) - min(r["started_at"] for r in graded)
    assert span <= math.ceil(len(graded) / WORKERS) * (TIMEOUT_S + MARGIN_S), span


def test_nothing_outside_the_rows_holds_the_batch_up(batch):
    """Reading the files for their written answers and writing the reports are bounded too: the
    notebook of 60,000 odd outputs once kept a batch of seven rows busy for four minutes before
    any row started (a full schema validation in the grader's own process)."""
    graded = [r for r in batch["results"].values() if "started_at" in r]
    span = max(r["returned_at"] for r in graded) - min(r["started_at"] for r in graded)
    outside = batch["seconds"] - span
    assert outside <= budgets.budget(45), f"{outside:.0f} s of {batch['seconds']:.0f} s outside the rows"


def test_honest_submissions_are_graded_in_full(batch):
    for label in ("honest.ipynb", "honest_export.zip", ODD_FILE):
        result = row(batch, label)
        assert full(result) and result["status"] == "Completed", (label, result["status"])


def test_costly_notebooks_are_graded_on_their_code(batch):
    """Outputs are never read: a notebook of 200,000 empty outputs or 60,000 odd ones is graded
    like the same notebook without them."""
    for label in ("many_empty_outputs.ipynb", "many_display_outputs.zip"):
        result = row(batch, label)
        assert full(result) and result["status"] == "Completed", (label, result["status"])


def test_a_zip_bomb_of_a_notebook_is_refused_at_the_door(batch):
    result = row(batch, "many_empty_outputs.zip")
    assert result["status"] == ("not graded: the notebook in the zip file is compressed more than 100:1 "
                                "(submit the .ipynb file itself)"), result["status"]
    assert "started_at" not in result, "it reached a judge"


def test_a_million_entry_zip_is_refused(batch):
    result = row(batch, "million_entries.zip")
    assert result["status"] == f"not graded: the zip file holds 1000000 files, more than {MAX_ZIP_MEMBERS}"


def test_messages_from_the_notebook_are_shown_escaped(batch):
    failed = row(batch, "sends_failed.ipynb")
    assert failed["status"] == ("could not run the notebook (the notebook's process said: "
                                "\\x1b[1A\\x1b[2Kfake_row.ipynb 19 19 19/19 Completed\\x1b[8m)")
    assert failed["total"] == 0
    feedback = (batch["out"] / "feedback" / next(p.name for p in (batch["out"] / "feedback").iterdir()
                                                  if p.name.startswith("raises_escapes"))).read_text()
    # (markdown: brackets escaped)
    assert "raised an error: ValueError: \\x1b\\[2J\\x1b\\[H all tests passed: 19/19 \\x07\n" in feedback
    assert "RuntimeError: top\\x1b[31m level \\x1b[0m" in feedback


def test_odd_member_names_are_shown_escaped(batch):
    result = row(batch, ODD_FILE)
    assert "graded x\\x0a\\x1b[1A\\x1b[2Kfake_row.ipynb      19     19  19/19  Completed\\x1b[8m/" \
           f"{ASSIGNMENT}.ipynb" in result["notes"][0]
    files = [line[0] for line in csv.reader(io.StringIO((batch["out"] / "grades.csv").read_text(), newline=""))]
    assert sanitize.name(ODD_FILE) in files, "the label in the CSV is not the row's label"


def control_bytes(data: bytes, allowed=b"\n") -> list:
    return sorted({byte for byte in data if (byte < 0x20 or byte == 0x7F) and byte not in allowed})


def test_no_sink_holds_control_characters(batch):
    out = batch["out"]
    stderr = batch["stderr"]
    assert b"\x1b[K" in stderr, "the progress line was not shown"
    for own in GRADER_ESCAPES:
        stderr = stderr.replace(own, b"")
    assert control_bytes(batch["stdout"]) == [], batch["stdout"][-2000:]
    assert control_bytes(stderr) == [], stderr[-2000:]
    sinks = [out / "grades.csv", out / "summary.md", *sorted((out / "feedback").glob("*.md"))]
    assert len(sinks) == 2 + batch["count"]
    for path in sinks:
        assert control_bytes(path.read_bytes()) == [], path.name
    table = list(csv.reader(io.StringIO((out / "grades.csv").read_text(), newline="")))
    assert len(table) == 2 + batch["count"]
    assert all("\n" not in cell and "\r" not in cell for line in table for cell in line)
    score_table = batch["stdout"].decode().split("\n\nwrote ")[0].splitlines()
    assert len(score_table) == 2 + batch["count"], "a forged row reached the score table"


def test_the_grading_process_refuses_a_million_entries_with_little_memory(tmp_path):
    """The grader's own peak memory (not its judges': with only this file no judge starts)."""
    zip_listing_many(tmp_path / "million.zip", 1_000_000)
    probe = ("import resource, subprocess, sys, time\n"
             "started = time.monotonic()\n"
             "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
             "print(time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    command = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(tmp_path / "million.zip"),
               "--out", str(tmp_path / "out"), "--quiet"]
    seconds, peak_kb = map(float, subprocess.run([sys.executable, "-c", probe, *command], cwd=ROOT,
                                                 capture_output=True, text=True, check=True).stdout.split())
    print(f"million-entry zip: whole grader run {seconds:.1f} s, peak RSS {peak_kb / 1024:.0f} MB")
    assert peak_kb < 400 * 1024  # listing the entries alone took about 865 MB before the caps


# -- fast unit tests ----------------------------------------------------------------------------
def test_the_zip_generator_writes_zips_that_zipfile_lists_in_full(tmp_path):
    count = 70_000  # more than a classic end record can count: zip64, as for a million
    with zipfile.ZipFile(zip_listing_many(tmp_path / "many.zip", count)) as archive:
        assert len(archive.infolist()) == count


def test_a_million_entries_are_refused_from_the_end_record(tmp_path):
    path = zip_listing_many(tmp_path / "million.zip", 1_000_000)
    tracemalloc.start()
    started = time.perf_counter()
    submission = load(path, "million.zip")
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert submission.problem == Outcome(Status.NOT_GRADED,
                                         f"the zip file holds 1000000 files, more than {MAX_ZIP_MEMBERS}")
    assert peak < 1024 * 1024, peak  # the end record is read; the 47 MB directory is not
    assert seconds < 1.0, seconds


def test_zip_caps(tmp_path):
    honest = nbformat.writes(reference()).encode()
    too_many = zip_of(tmp_path / "many.zip", {f"f{i}.txt": b"" for i in range(MAX_ZIP_MEMBERS + 1)})
    assert load(too_many, "x").problem.text.startswith("not graded: the zip file holds 1001 files")
    long_name = zip_of(tmp_path / "long.zip", {"d" * 1001 + f"/{ASSIGNMENT}.ipynb": honest})
    assert load(long_name, "x").problem.text.startswith("not graded: a file name in the zip file is longer")
    bomb = zip_of(tmp_path / "bomb.zip", {f"{ASSIGNMENT}.ipynb": b"{" + b" " * (20 << 20) + b"}"})
    assert load(bomb, "x").problem.text.startswith("not graded: the notebook in the zip file is compressed more than")
    fine = zip_of(tmp_path / "fine.zip", {f"{ASSIGNMENT}.ipynb": honest, "data.txt": b"0" * 10_000})
    assert load(fine, "x", f"{ASSIGNMENT}.ipynb").notebook == honest
    assert load(tmp_path / "fine.zip", "x").problem is None
    (tmp_path / "cut.zip").write_bytes((tmp_path / "fine.zip").read_bytes()[:-30])
    assert load(tmp_path / "cut.zip", "x").problem.text.startswith("not a zip file")


@pytest.mark.parametrize("text,shown", [
    ("plain text", "plain text"),
    ("two\nlines\r\n\tand tabs", "two lines and tabs"),
    ("\x1b[2Kerase", "\\x1b[2Kerase"),
    ("bell\x07 del\x7f csi\x9b nul\x00", "bell\\x07 del\\x7f csi\\x9b nul\\x00"),
    ("right\u202eto left", "right\\u202eto left"),
    ("line\u2028separator", "line separator"),
    ("undecodable \udcff byte", "undecodable \\udcff byte"),
    ("émoji ✓ stays", "émoji ✓ stays"),
])
def test_line(text, shown):
    assert sanitize.line(text) == shown


def test_name_keeps_names_apart_and_on_one_line():
    assert sanitize.name("a\tb.ipynb") == "a\\x09b.ipynb" != sanitize.name("a b.ipynb")
    assert sanitize.name(f"x{FAKE_ROW}.zip") == \
        "x\\x0a\\x1b[1A\\x1b[2Kfake_row.ipynb      19     19  19/19  Completed\\x1b[8m.zip"


def test_block_keeps_lines_and_nothing_else():
    assert sanitize.block("a\r\nb\rc\td\x1be") == "a\nb\nc    d\\x1be"


@pytest.mark.parametrize("sanitizer", [sanitize.line, sanitize.name, sanitize.block])
def test_lengths_are_capped_and_nothing_invisible_survives(sanitizer):
    hostile = "".join(map(chr, range(0x20))) + "\x7f\x85\x9b\u200b\u2028\u2029\u202e\ufeff\udcff" + "x" * 10_000
    shown = sanitizer(hostile, 100)
    assert len(shown) <= 100 and shown.endswith(sanitize.ELLIPSIS)
    assert all(c.isprintable() or (c == "\n" and sanitizer is sanitize.block) for c in shown), shown
    assert re.fullmatch(r"[^\x00-\x09\x0b-\x1f\x7f]*", shown)


def test_minimal_notebook_keeps_only_what_the_grader_runs():
    nb = reference()
    next(c for c in nb.cells if c.cell_type == "code").outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="hi")]
    nb.metadata["kernelspec"] = {"name": "odd", "display_name": "Odd", "language": "python", "extra": {"x": 1}}
    shaped = minimal_notebook(nbformat.writes(nb).encode())
    assert nbformat.validate(nbformat.from_dict(shaped)) is None
    assert [c["source"] for c in shaped["cells"]] == [c.source for c in nb.cells]
    assert all(c.get("outputs", []) == [] for c in shaped["cells"])
    assert shaped["metadata"] == {"kernelspec": {"name": "odd", "display_name": "Odd", "language": "python"}}


@pytest.mark.parametrize("raw,problem", [
    (b"", "the file is empty"),
    (b"\x89PNG\r\n", "the file is not UTF-8 text"),
    (b"{'a': 1}", "the file is not JSON (Expecting property name enclosed in double quotes"),
    (b"[" * 100_000 + b"]" * 100_000, "the file's JSON is nested too deeply"),
    (b'{"cells": []}', "the file is JSON, but not a Jupyter notebook"),
    (b'{"nbformat": 4, "cells": {}}', "the file is JSON, but not a Jupyter notebook (no list of cells)"),
    (b'{"nbformat": 4, "cells": [{"cell_type": "markdown", "source": "x"}]}', "it has no code cells"),
    (b'{"nbformat": 2, "cells": []}', "a notebook of format 2"),
])
def test_minimal_notebook_refuses_what_is_not_a_notebook(raw, problem):
    with pytest.raises(NotANotebook) as refused:
        minimal_notebook(raw)
    assert str(refused.value).startswith(problem)


def test_notebook_reading_runs_under_the_deadline(tmp_path):
    from autograder.notebook_shape import read_notebook
    path = tmp_path / "n.ipynb"
    path.write_bytes(nbformat.writes(reference()).encode())
    assert read_notebook(path, tmp_path / "out.ipynb", time.monotonic() - 1, 1024) == Outcome(Status.TIMEOUT)
    assert read_notebook(path, tmp_path / "out.ipynb", time.monotonic() + 30, 1024) is None
    assert nbformat.read(tmp_path / "out.ipynb", as_version=4).cells
    # a file of millions of tiny containers needs more memory than its size: the cap holds
    (tmp_path / "tiny.ipynb").write_bytes(b'{"nbformat": 4, "cells": [' + b"[]," * 3_000_000 + b"[]]}")
    assert read_notebook(tmp_path / "tiny.ipynb", tmp_path / "out2.ipynb", time.monotonic() + 60, 128).text == \
        "not a notebook: the file is too large or too complex to read within the memory limit"
