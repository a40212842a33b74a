"""Shared by the written-answer tests: a master notebook with a rubric, HTML parsing, snapshots."""
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import yaml

from autograder import assignments
from autograder.assignments import ROOT
from autograder.written_questions import written_questions

ASSIGNMENT = "purification"
SAMPLES = ROOT / "data" / "sample_submissions" / ASSIGNMENT


def master_with_rubric(spec, folder: Path) -> Path:
    """The master itself when its written questions carry rubrics, else a copy with one 1-point
    item per point added to each (for as long as the course's masters have no rubrics yet)."""
    if all(q.rubric for q in written_questions(spec)):
        return spec.master
    nb = nbformat.read(spec.master, as_version=4)
    for cell in nb.cells:
        text = cell.source.strip()
        if cell.cell_type != "raw" or not text.startswith("# BEGIN QUESTION"):
            continue
        config = yaml.safe_load(text[len("# BEGIN QUESTION"):]) or {}
        if not config.get("manual") or config.get("rubric"):
            continue
        points = int(config["points"])
        items = [{"points": 1, "item": f"{config['name']} part {chr(ord('a') + k)} right"} for k in range(points)]
        cell.source = text + "\nrubric:\n" + "".join(
            f"  - {{points: 1, item: \"{item['item']}\"}}\n" for item in items)
    path = folder / spec.master.name
    nbformat.write(nb, path)
    return path


def use_rubric_master(monkeypatch, tmp_path_factory):
    """Make `assignments` see a master with rubrics for ASSIGNMENT (in this process)."""
    spec = assignments.Assignment(ASSIGNMENT)
    path = master_with_rubric(spec, tmp_path_factory.mktemp("master"))
    original = assignments.Assignment.master
    monkeypatch.setattr(assignments.Assignment, "master",
                        property(lambda self: path if self.id == ASSIGNMENT else original.fget(self)))
    return spec


class Elements(HTMLParser):
    """Every start tag of a page, with its attributes, and the text of its scripts."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.scripts, self._in_script = [], [], False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def snapshot(folder: Path) -> dict:
    """{relative path: bytes} of every file under `folder` (empty when it does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
