"""A TA's round trip in headless Chromium: open a question page from the file system, tick rubric
items for two answers, save, merge the saved file, check the totals. Skips where Chromium is absent."""
import pytest

from autograder import written
from autograder.__main__ import main
from autograder.written_questions import written_questions
from autograder.written_scores import load
from tests.browser import chromium_page
from tests.written_helpers import ASSIGNMENT, SAMPLES, use_rubric_master

LABELS = {"blank.ipynb", "full.ipynb", "partial.ipynb"}


@pytest.fixture()
def spec(monkeypatch, tmp_path_factory):
    return use_rubric_master(monkeypatch, tmp_path_factory)


def test_tick_save_merge_in_a_browser(spec, tmp_path):
    out = tmp_path / "out"
    pages = written.make_pages(ASSIGNMENT, [SAMPLES], out, quiet=True)
    question = written_questions(spec)[0]
    problems, dialogs, requests = [], [], []
    with chromium_page(tmp_path / "downloads") as page:
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on("request", lambda request: requests.append(request.url))
        page.goto(pages[question.name].as_uri())
        progress = page.locator("#progress")
        assert progress.inner_text() == "1 of 3 scored"  # the page's script ran; blank pre-scored 0
        full = page.locator('article[data-id="full.ipynb"]')
        partial = page.locator('article[data-id="partial.ipynb"]')
        for box in full.locator("input.item").all():
            box.check()
        partial.locator("input.item").first.check()
        partial.locator("textarea.comment").fill("only the first step")
        assert full.locator("output.score").inner_text() == f"{question.points:g}"
        assert partial.locator("output.score").inner_text() == f"{question.rubric[0].points:g}"
        assert progress.inner_text() == "3 of 3 scored"
        page.reload()  # ticks survive a reload (kept in the browser as the TA goes)
        assert page.locator('article[data-id="partial.ipynb"] input.item').first.is_checked()
        with page.expect_download() as download:
            page.click("#save")
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        page.screenshot(path=str(tmp_path / f"{question.name}.png"), full_page=True)
    assert not problems, problems  # no CSP violation, no script error
    assert not dialogs  # the hostile answer's alert() never ran
    assert all(url.startswith(("file:", "data:", "blob:")) for url in requests), requests
    assert saved.name == f"{ASSIGNMENT}-{question.name}.scores.json"

    assert main(["written", ASSIGNMENT, "--out", str(out), "--merge-saved", str(saved)]) == 0
    scores = load(out / "written_scores.csv", spec, LABELS)
    assert scores.row("full.ipynb").scores[question.name] == question.points
    assert scores.row("partial.ipynb").scores[question.name] == question.rubric[0].points
    assert scores.row("partial.ipynb").items[question.name] == [1]
    assert "only the first step" in scores.row("partial.ipynb").comment
    assert scores.row("blank.ipynb").scores[question.name] == 0
    assert scores.total("blank.ipynb") == 0  # no answers at all: every question pre-scored 0
    assert scores.total("full.ipynb") is None  # its other questions are not scored yet
    assert (tmp_path / f"{question.name}.png").stat().st_size > 10_000
