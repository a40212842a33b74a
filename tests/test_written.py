"""Written answers at class scale: pages, safe rendering, merging the TA's scores into the grades.

The sample submissions carry written answers of varied quality (math, a code block, an embedded
image, an attempted script injection, no answer at all); grading runs on them for real.
"""
import base64
import csv
import hashlib
import io
import json
import re
from html import escape as html_escape

import nbformat
import pytest

from autograder import written
from autograder.__main__ import main
from autograder.nbgrader_export import read_zip, source_notebook, split_support_files
from autograder.report import _plain
from autograder.written_questions import written_questions
from autograder.written_scores import WrittenScoresError
from tests.written_helpers import ASSIGNMENT, SAMPLES, Elements, snapshot, use_rubric_master

LABELS = ["blank.ipynb", "full.ipynb", "partial.ipynb"]
OTTER_COLUMNS = 9  # file, q1 q2 q3 q5 q6, total_points_earned, percent_correct, grading_status


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        yield use_rubric_master(patch, tmp_path_factory)


@pytest.fixture(scope="module")
def questions(spec):
    found = written_questions(spec)
    assert len(found) >= 2 and all(q.rubric for q in found)
    assert all(sum(r.points for r in q.rubric) == q.points for q in found)
    return found


@pytest.fixture(scope="module")
def pages(spec, questions, tmp_path_factory):
    out = tmp_path_factory.mktemp("written")
    made = written.make_pages(ASSIGNMENT, [SAMPLES], out, quiet=True)
    return out, {name: path.read_text() for name, path in made.items()}


def articles(page: str) -> dict:
    """{data-id: article html} of a question page, in page order."""
    found = re.findall(r'<article class="answer"[^>]*data-id="([^"]*)"[^>]*>(.*?)</article>', page, re.S)
    return dict(found)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# ---- pages ------------------------------------------------------------------------------------

def test_one_page_per_question_with_every_answer(pages, questions):
    out, html = pages
    assert sorted(p.name for p in (out / "written").iterdir()) == sorted(f"{q.name}.html" for q in questions)
    for q in questions:
        page = html[q.name]
        assert list(articles(page)) == LABELS, q.name  # every submission, in a stable order
        for body in articles(page).values():
            assert body.count('class="item"') == len(q.rubric)
            assert body.count('<textarea class="comment"') == 1
        assert '<p class="no-answer">no answer</p>' in articles(page)["blank.ipynb"]
        assert 'data-noanswer="1"' in re.search(r'<article[^>]*data-id="blank.ipynb"[^>]*>', page).group(0)
        for item in q.rubric:
            assert html_escape(item.text) in page
    first = html[questions[0].name]
    full = articles(first)["full.ipynb"]
    assert re.search(r'<img class="math" src="data:image/png;base64,[A-Za-z0-9+/=]+"', full)  # math drawn
    assert '<pre><code class="language-python">import torch' in full                        # code block
    assert re.search(r'<img class="student-image" src="data:image/png;base64,', full)         # attachment
    assert "<h3>Model answer</h3>" in first and "<h3>Rubric</h3>" in first
    sheet = read_csv(out / "written_scores.csv")
    assert sheet[0][: len(questions) + 2] == ["file", *[q.name for q in questions], "comment"]
    rows = {r[0]: r for r in sheet[2:]}
    assert sorted(rows) == LABELS
    assert all(rows["blank.ipynb"][1 + i] == "0" for i in range(len(questions)))  # no answer: pre-scored 0
    assert rows["full.ipynb"][1] == ""                                              # to be scored


def test_student_html_is_inert(pages):
    _, html = pages
    hostile = 0
    for name, page in html.items():
        parsed = Elements(page)
        scripts = [attrs for tag, attrs in parsed.tags if tag == "script"]
        assert len(scripts) == 1 and "src" not in scripts[0], name  # only the page's own, inline
        csp = next(a["content"] for t, a in parsed.tags
                   if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
        digest = base64.b64encode(hashlib.sha256(parsed.scripts[0].encode()).digest()).decode()
        assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp and "img-src data:" in csp
        for tag, attrs in parsed.tags:
            assert not [a for a in attrs if a.lower().startswith("on")], (tag, attrs)
            assert tag not in ("a", "iframe", "object", "embed", "link", "form", "base", "frame"), tag
            assert "href" not in attrs and "srcset" not in attrs and "action" not in attrs
            if "src" in attrs:
                assert tag == "img" and re.match(r"data:image/(png|jpeg|gif|webp);base64,", attrs["src"]), attrs
            assert "javascript:" not in attrs.get("src", "") + attrs.get("style", "")
        assert sum(1 for t, _ in parsed.tags if t == "style") == 1
        if "&lt;script&gt;alert(&quot;grader&quot;)&lt;/script&gt;" in page:
            hostile += 1
            assert "&lt;img src=x onerror=" in page and "only images embedded in the notebook" in page
    assert hostile == 1  # the partial sample's first answer tries it, shown as text


def test_anonymized_codes_are_stable_and_hide_names(spec, questions, tmp_path):
    written.make_pages(ASSIGNMENT, [SAMPLES], tmp_path, anonymize=True, quiet=True)
    first = {q.name: (tmp_path / "written" / f"{q.name}.html").read_text() for q in questions}
    roster = json.loads((tmp_path / "written_roster.json").read_text())["ids"]
    assert sorted(roster.values()) == LABELS and all(code.startswith("S-") for code in roster)
    for page in first.values():
        assert list(articles(page)) == sorted(roster)  # same codes, same order on every page
        assert not any(label in page for label in LABELS)
    written.make_pages(ASSIGNMENT, [SAMPLES], tmp_path, anonymize=True, quiet=True)
    assert json.loads((tmp_path / "written_roster.json").read_text())["ids"] == roster
    assert {q.name: (tmp_path / "written" / f"{q.name}.html").read_text() for q in questions} == first
    assert sorted(r[0] for r in read_csv(tmp_path / "written_scores.csv")[2:]) == LABELS  # sheet: real names


def saved_file(folder, spec_id, question, answers):
    """A saved file as the page's Save button writes it."""
    path = folder / f"{spec_id}-{question.name}.scores.json"
    path.write_text(json.dumps({"format": "seqmod-written-scores", "version": 1, "assignment": spec_id,
                                "question": question.name, "page": written.page_key(spec_id, question),
                                "rubric": [r.points for r in question.rubric], "answers": answers}))
    return path


def test_merge_saved_fills_the_sheet_and_refuses_bad_files(spec, questions, tmp_path):
    written.make_pages(ASSIGNMENT, [SAMPLES], tmp_path, quiet=True)
    first, second = questions[0], questions[1]
    saves = [saved_file(tmp_path, ASSIGNMENT, first, {
                "full.ipynb": {"ticked": list(range(len(first.rubric))), "scored": True, "comment": "complete"},
                "partial.ipynb": {"ticked": [0], "scored": True, "comment": "only\nthe first part"}}),
             saved_file(tmp_path, ASSIGNMENT, second, {
                "full.ipynb": {"ticked": [len(second.rubric) - 1], "scored": True, "comment": ""},
                "blank.ipynb": {"ticked": [], "scored": False, "comment": "see me"}})]
    assert main(["written", ASSIGNMENT, "--out", str(tmp_path), "--merge-saved", *map(str, saves)]) == 0
    rows = {r[0]: r for r in read_csv(tmp_path / "written_scores.csv")}
    header = rows.pop("file")
    column = {name: i for i, name in enumerate(header)}
    assert float(rows["full.ipynb"][column[first.name]]) == first.points
    assert float(rows["partial.ipynb"][column[first.name]]) == first.rubric[0].points
    assert float(rows["full.ipynb"][column[second.name]]) == second.rubric[-1].points
    assert rows["partial.ipynb"][column[second.name]] == "0"  # no answer: pre-scored 0, kept
    assert rows["blank.ipynb"][column[second.name]] == "0"    # a comment alone changes no score
    assert rows["blank.ipynb"][column["comment"]] == f"{second.name}: see me"
    assert rows["partial.ipynb"][column[f"{first.name} items"]] == "1"
    assert rows["partial.ipynb"][column["comment"]] == f"{first.name}: only the first part"
    before = (tmp_path / "written_scores.csv").read_bytes()
    bad = [saved_file(tmp_path, ASSIGNMENT, first, {"full.ipynb": {"ticked": [len(first.rubric)], "scored": True}}),
           saved_file(tmp_path, ASSIGNMENT, first, {"stranger.ipynb": {"ticked": [0], "scored": True}})]
    for path in bad:
        with pytest.raises(WrittenScoresError):
            written.merge_saved(ASSIGNMENT, tmp_path, [path])
    stale = json.loads(saves[0].read_text())
    stale["page"] = "0" * 16  # saved against an older rubric
    saves[0].write_text(json.dumps(stale))
    with pytest.raises(WrittenScoresError, match="another rubric"):
        written.merge_saved(ASSIGNMENT, tmp_path, [saves[0]])
    assert (tmp_path / "written_scores.csv").read_bytes() == before


def test_pdf_one_per_submission_a_page_per_answer(spec, questions, tmp_path):
    if written.chromium_path() is None:
        pytest.skip("--pdf test skipped: Chromium is not installed (apt-get install chromium)")
    written.make_pages(ASSIGNMENT, [SAMPLES], tmp_path, pdf=True, quiet=True)
    pdfs = sorted((tmp_path / "pdf").glob("*.pdf"))
    assert [p.stem for p in pdfs] == [label for label in LABELS]
    for pdf in pdfs:
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF")
        assert len(re.findall(rb"/Type\s*/Page\b(?!s)", data)) >= len(questions)


def test_pdf_without_chromium_says_so(spec, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(written, "chromium_path", lambda: None)
    written.make_pages(ASSIGNMENT, [SAMPLES], tmp_path, pdf=True, quiet=True)
    assert "--pdf skipped: Chromium was not found" in capsys.readouterr().err
    assert not (tmp_path / "pdf").exists() and (tmp_path / "written_scores.csv").exists()


def test_nbgrader_export_keeps_written_questions_with_their_points(spec, questions):
    test_sources, files = read_zip(spec.zip_path)
    _, private = split_support_files(files)
    nb = source_notebook(nbformat.read(spec.master, as_version=4), test_sources, private)
    manual = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
              if c.metadata.get("nbgrader", {}).get("grade") and c.metadata["nbgrader"].get("solution")}
    for q in questions:
        cell = manual[f"{q.name}_answer"]
        assert cell.cell_type == "markdown" and cell.metadata["nbgrader"]["points"] == q.points
        assert all(item.text in cell.source for item in q.rubric)


# ---- grade --written --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graded(spec, questions, tmp_path_factory):
    """The samples graded once without written scores; the plain grades.csv kept for comparison."""
    out = tmp_path_factory.mktemp("graded")
    assert main(["grade", ASSIGNMENT, str(SAMPLES), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    return out, read_csv(out / "grades.csv"), (out / "summary.md").read_text()


def scores_csv(questions, rows):
    lines = ["file," + ",".join(q.name for q in questions) + ",comment,"
             + ",".join(f"{q.name} items" for q in questions)]
    lines += rows
    return "\n".join(lines) + "\n"


def test_grade_merges_written_scores(graded, questions, tmp_path, capsys):
    out, plain, _ = graded
    first, second = questions[0], questions[1]
    names = [q.name for q in questions]
    full = ",".join(f"{q.points:g}" for q in questions)
    partial_first = first.rubric[0].points
    rest = "," * (len(questions) - 2)
    sheet = tmp_path / "written_scores.csv"
    sheet.write_text(scores_csv(questions, [
        f"full.ipynb,{full},\"{first.name}: clear and complete\"," + ",".join(
            " ".join(str(i + 1) for i in range(len(q.rubric))) for q in questions),
        f"partial.ipynb,{partial_first:g},{rest},{first.name}: only the first step,1" + "," * (len(questions) - 1),
        "blank.ipynb," + ",".join("0" for _ in questions) + ",," + "," * (len(questions) - 1)]))
    assert main(["grade", ASSIGNMENT, str(SAMPLES), "--out", str(out), "--workers", "2", "--quiet",
                 "--written", str(sheet)]) == 0
    table = read_csv(out / "grades.csv")
    header = table[0]
    assert header[:OTTER_COLUMNS] == plain[0][:OTTER_COLUMNS] and header[OTTER_COLUMNS - 1] == "grading_status"
    assert header[OTTER_COLUMNS:] == [*names, "written_total", "course_total"]
    for before, after in zip(plain, table):
        assert after[:OTTER_COLUMNS] == before[:OTTER_COLUMNS]  # otter's columns unchanged
    rows = {r[0]: dict(zip(header, r)) for r in table[1:]}
    points = rows["points-per-question"]
    assert float(points["written_total"]) == sum(q.points for q in questions)
    assert float(points["course_total"]) == float(points["total_points_earned"]) + float(points["written_total"])
    full_row = rows["full.ipynb"]
    assert float(full_row["written_total"]) == sum(q.points for q in questions)
    assert float(full_row["course_total"]) == float(full_row["total_points_earned"]) + float(full_row["written_total"])
    assert float(rows["blank.ipynb"]["course_total"]) == float(rows["blank.ipynb"]["total_points_earned"])
    partial = rows["partial.ipynb"]
    assert float(partial[first.name]) == partial_first
    assert partial[second.name] == "" and partial["written_total"] == "" and partial["course_total"] == ""
    feedback = (out / "feedback" / "partial.ipynb.md").read_text()
    assert f"### {first.name}: {partial_first:g} / {first.points:g}" in feedback
    assert f"- [x] {_plain(first.rubric[0].text)}" in feedback and "only the first step" in feedback
    assert f"### {second.name}: not scored yet" in feedback
    full_feedback = (out / "feedback" / "full.ipynb.md").read_text()
    assert all(f"- [x] {_plain(item.text)}" in full_feedback for q in questions for item in q.rubric)
    course = float(full_row["course_total"])
    assert f"**Course total: {course:g} / {float(points['course_total']):g}**" in full_feedback
    summary = (out / "summary.md").read_text()
    assert "## Written questions" in summary and "- partial.ipynb: " + second.name in summary
    assert re.search(rf"\| {first.name} \| {first.points:g} \| 2/3 \| 3/3 \|", summary)


def bad_sheets(questions):
    first = questions[0]
    zeros = "," + ",".join("0" for _ in questions[1:])
    tail = ",," + "," * (len(questions) - 1)
    return {
        "above": (f"full.ipynb,{first.points + 1:g}{zeros}{tail}", "row 2 (file 'full.ipynb'), column " + first.name),
        "below": (f"full.ipynb,-1{zeros}{tail}", f"column {first.name}: -1 is below 0"),
        "not a number": (f"full.ipynb,abc{zeros}{tail}", f"column {first.name}: 'abc' is not a number"),
        "stranger": (f"mallory.ipynb,1{zeros}{tail}", "row 2 (file 'mallory.ipynb'), column file: not a submission"),
        "item": (f"full.ipynb,1{zeros},,{len(first.rubric) + 1}" + "," * (len(questions) - 1),
                 f"column {first.name} items: item {len(first.rubric) + 1} does not exist"),
    }


@pytest.mark.parametrize("case", ["above", "below", "not a number", "stranger", "item", "no such question"])
def test_bad_written_scores_refused_and_nothing_written(graded, questions, tmp_path, case, capsys):
    out, _, _ = graded
    sheet = tmp_path / "bad.csv"
    if case == "no such question":
        sheet.write_text("file,q99,comment\nfull.ipynb,1,\n")
        expected = "row 1, column 2 (q99): purification has no written question 'q99'"
    else:
        row, expected = bad_sheets(questions)[case]
        sheet.write_text(scores_csv(questions, [row]))
    before = snapshot(out)
    fresh = tmp_path / "fresh"
    for target in (out, fresh):
        code = main(["grade", ASSIGNMENT, str(SAMPLES), "--out", str(target), "--quiet", "--written", str(sheet)])
        error = capsys.readouterr().err
        assert code == 2 and "refused, nothing was written" in error and expected in error, error
    assert snapshot(out) == before  # byte for byte
    assert not fresh.exists()


def test_summary_without_written_scores_says_not_merged(graded, questions):
    summary = graded[2]
    assert "Written scores not merged yet" in summary
    assert re.search(rf"\| {questions[0].name} \| {questions[0].points:g} \| 2/3 \| not merged \|", summary)


def test_scores_sheet_parse_names_every_problem(questions):
    from autograder.written_scores import parse
    text = scores_csv(questions, ["full.ipynb,9" + "," * (len(questions) - 1) + ",,",
                                  "full.ipynb,1" + "," * (len(questions) - 1) + ",,"])
    with pytest.raises(WrittenScoresError) as caught:
        parse(text, questions, set(LABELS), "sheet.csv", ASSIGNMENT)
    assert any("row 2" in p and "above" in p for p in caught.value.problems)
    assert any("row 3" in p and "a second row" in p for p in caught.value.problems)
    spreadsheet_quoted = io.StringIO()
    csv.writer(spreadsheet_quoted).writerows([["file", questions[0].name], ["'=cmd.ipynb", "1"]])
    parsed = parse(spreadsheet_quoted.getvalue(), questions, {"=cmd.ipynb"})
    assert parsed.row("=cmd.ipynb").scores[questions[0].name] == 1


def test_math_drawn_offline_or_shown_as_source():
    from autograder.written_render import render_math
    assert render_math(r"k \ge 1", display=False).startswith('<img class="math" src="data:image/png;base64,')
    drawn = render_math(r"\frac{\sigma^2}{\sigma^2 + \lambda}", display=True)
    assert drawn.startswith('<div class="math-display"><img class="math" src="data:image/png;base64,')
    source = render_math(r"\begin{cases} 1 & x > 0 \end{cases}", display=False)
    assert source == r'<code class="math-source">$\begin{cases} 1 &amp; x &gt; 0 \end{cases}$</code>'


def test_answer_found_by_position_when_ids_were_rewritten(questions):
    from autograder.written_questions import find_answer
    nb = nbformat.read(SAMPLES / "full.ipynb", as_version=4)
    question = questions[0]
    by_id = find_answer(nb, question)
    assert by_id.located == "cell id" and by_id.answered and len(by_id.cells) == 1
    answer_at = next(i for i, c in enumerate(nb.cells) if c.get("id") == question.answer_cell_id)
    nb.cells.insert(answer_at + 1, nbformat.v4.new_markdown_cell("And a second thought, in a cell of my own."))
    extended = find_answer(nb, question)
    assert [c.source for c in extended.cells] == [by_id.cells[0].source, "And a second thought, in a cell of my own."]
    for index, cell in enumerate(nb.cells):  # an editor that renumbers every cell
        cell["id"] = f"renamed-{index}"
    moved = find_answer(nb, question)
    assert moved.located == "after the prompt" and moved.text == extended.text
