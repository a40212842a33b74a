"""Written answers graded at class scale.

    python -m autograder written ASSIGNMENT PATH... --out DIR [--anonymize] [--pdf]
    python -m autograder written ASSIGNMENT --out DIR --merge-saved FILE...

The first writes DIR/written/<question>.html (one page per written question: prompt, model answer,
rubric, then every submission's answer with rubric checkboxes and a comment box) and
DIR/written_scores.csv to fill in (scores already there are kept). The page saves the TA's ticks
in the browser and downloads them as `<assignment>-<question>.scores.json`; the second form merges
such files into DIR/written_scores.csv, which `grade --written` then adds to grades.csv.
"""
import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import assignments
from .files import atomic_write
from .submissions import collect
from .written_questions import answers_of, written_questions
from .written_render import code_block, escape, markdown, outputs
from .written_scores import WrittenRow, WrittenScores, WrittenScoresError, join_comment, parse, split_comment, to_csv

ASSETS = Path(__file__).parent
SAVED_FORMAT = "seqmod-written-scores"
CHROMIUM = os.environ.get("SEQMOD_CHROMIUM", "/usr/bin/chromium")


def add_arguments(parser):
    """The `written` subcommand's arguments."""
    parser.add_argument("assignment", help="assignment id, e.g. ssm_forward_cpu")
    parser.add_argument("paths", nargs="*", help=".ipynb files, otter export .zip files, or folders of them")
    parser.add_argument("--out", required=True, type=Path, help="output folder (the same as for grade is fine)")
    parser.add_argument("--anonymize", action="store_true",
                        help="show stable codes instead of file names on the pages and in the PDFs")
    parser.add_argument("--pdf", action="store_true",
                        help="also print one PDF per submission, each written answer on its own page "
                             "(needs headless Chromium), e.g. for Gradescope's manual grading")
    parser.add_argument("--merge-saved", nargs="+", type=Path, metavar="FILE",
                        help="merge the pages' saved .scores.json files into DIR/written_scores.csv")


# ---- labels and anonymous codes ---------------------------------------------------------------

def _key(out: Path) -> bytes:
    """The secret behind the anonymous codes: kept in DIR so that codes stay the same across runs."""
    path = out / ".written_key"
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(path, secrets.token_hex(16) + "\n")
    return bytes.fromhex(path.read_text().strip())


def anonymous_code(key: bytes, identity: str) -> str:
    """A stable code for a submission (S-XXXXXXXX), keyed by the course's secret."""
    digest = hmac.new(key, identity.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return "S-" + base64.b32encode(digest[:5]).decode("ascii")


def _roster(submissions, out: Path, anonymize: bool) -> dict:
    """{shown id: file label}; shown ids are labels, or codes when anonymized."""
    if not anonymize:
        return {s.label: s.label for s in submissions}
    key = _key(out)
    return {anonymous_code(key, s.label): s.label for s in submissions}


# ---- the page ---------------------------------------------------------------------------------

def page_key(assignment_id, question) -> str:
    """Changes when the rubric does: ticks saved against another rubric are not merged."""
    rubric = [(r.points, r.text) for r in question.rubric]
    text = json.dumps([assignment_id, question.name, question.points, rubric])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _csp(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
            "base-uri 'none'; form-action 'none'")


def _head(title: str, script: str) -> str:
    css = (ASSETS / "written_page.css").read_text()
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{html.escape(_csp(script))}\">\n"
            "<meta name=\"referrer\" content=\"no-referrer\">\n"
            f"<title>{escape(title)}</title>\n<style>{css}</style></head>\n")


def answer_html(answer) -> str:
    """A student's answer as they wrote it: markdown cells rendered, code cells as code + outputs."""
    if not answer.answered:
        how = "no answer" if answer.located else "no answer (the answer cell was not found in this notebook)"
        return f'<p class="no-answer">{how}</p>'
    parts = []
    for cell in answer.cells:
        if cell.cell_type == "markdown":
            parts.append(markdown(cell.source, cell.get("attachments")))
        elif cell.cell_type == "code":
            parts.append(code_block(cell.source) + outputs(cell))
        else:
            parts.append(code_block(cell.source, "text"))
    return "".join(parts)


def question_header(spec, question) -> str:
    """The HTML head of a question's page: prompt, model answer and rubric."""
    rubric = "".join(f"<li>({r.points:g} pt) {escape(r.text)}</li>" for r in question.rubric)
    return (f'<section class="question"><h2>{escape(question.name)} ({question.points:g} points)</h2>'
            f'<div class="prompt">{markdown(question.prompt)}</div>'
            f'<h3>Model answer</h3><div class="model">{markdown(question.model_answer)}</div>'
            f'<h3>Rubric</h3><ol>{rubric or "<li>(no rubric items: tick nothing, use the comment)</li>"}</ol>'
            "</section>")


def question_page(spec, question, entries) -> str:
    """entries: [(shown id, Answer)] in page order."""
    script = (ASSETS / "written_page.js").read_text()
    rubric_points = json.dumps([r.points for r in question.rubric])
    articles = []
    for number, (shown, answer) in enumerate(entries, start=1):
        boxes = "".join(
            f'<label><input type="checkbox" class="item" data-index="{i}" data-points="{r.points:g}"> '
            f"({r.points:g} pt) {escape(r.text)}</label>" for i, r in enumerate(question.rubric))
        articles.append(
            f'<article class="answer" id="answer-{number}" data-id="{escape(shown)}" '
            f'data-noanswer="{0 if answer.answered else 1}">'
            f"<h2>{number}. {escape(shown)}</h2>"
            f'<div class="student-answer">{answer_html(answer)}</div>'
            f'<fieldset class="rubric"><legend>Rubric</legend>{boxes}'
            f'<label><input type="checkbox" class="scored"> scored (ticking an item marks it; '
            f"tick this alone for 0)</label>"
            f'<div class="score-line">score: <output class="score">&#8211;</output> / {question.points:g}</div>'
            f'<textarea class="comment" placeholder="comment for the student" aria-label="comment"></textarea>'
            "</fieldset></article>")
    title = f"{spec.id} {question.name}: written answers"
    return (_head(title, script) +
            f'<body data-assignment="{escape(spec.id)}" data-question="{escape(question.name)}" '
            f'data-page="{page_key(spec.id, question)}" data-points="{question.points:g}" '
            f'data-rubric="{escape(rubric_points)}">\n'
            f'<header class="bar"><h1>{escape(title)} ({len(entries)})</h1><span id="progress"></span>'
            '<button id="save" type="button">Save scores (download)</button>'
            "<span>Ticks are kept in this browser as you go; Save downloads them for "
            "<code>--merge-saved</code>.</span></header>\n"
            + question_header(spec, question) + "\n<main>\n" + "\n".join(articles) + "\n</main>\n"
            f"<script>{script}</script>\n</body></html>\n")


def submission_page(spec, questions, shown, answers) -> str:
    """One submission's written answers, one question per printed page (for the PDFs)."""
    sections = []
    for q in questions:
        sections.append(f'<article class="answer"><h2>{escape(shown)}: {escape(q.name)} ({q.points:g} points)</h2>'
                        f'<div class="prompt">{markdown(q.prompt)}</div><h3>Answer</h3>'
                        f'<div class="student-answer">{answer_html(answers[q.name])}</div></article>')
    return _head(f"{spec.id}: {shown}", "") + "<body>\n" + "\n".join(sections) + "\n</body></html>\n"


# ---- the command ------------------------------------------------------------------------------

def _existing_scores(path: Path, questions, labels) -> WrittenScores:
    if not path.exists():
        return WrittenScores(questions, {})
    known = set(labels)
    try:  # rows of files not in this batch are kept: read them as part of the class
        import csv
        import io
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        known |= {r[0].lstrip("'") if r[0][:2] in ("'=", "'+", "'-", "'@") else r[0] for r in rows[1:] if r}
        return parse(path.read_text(encoding="utf-8"), questions, known, str(path))
    except (OSError, UnicodeDecodeError, WrittenScoresError) as error:
        raise SystemExit(f"{path} exists but cannot be kept ({error}); move it away or fix it first") from None


def make_pages(assignment_id, paths, out: Path, anonymize=False, pdf=False, quiet=False) -> dict:
    """Write the pages and the scores sheet; return {question: page path}."""
    spec = assignments.get(assignment_id)
    questions = written_questions(spec)
    submissions = collect(paths, prefer=f"{spec.id}.ipynb")
    if not submissions:
        raise SystemExit("error: no submissions found")
    roster = _roster(submissions, out, anonymize)
    label_to_shown = {label: shown for shown, label in roster.items()}
    by_label = {s.label: answers_of(s.notebook, questions) for s in submissions}
    order = sorted(by_label, key=lambda label: (label_to_shown[label] if anonymize else label))
    sheet_path = out / "written_scores.csv"
    scores = _existing_scores(sheet_path, questions, by_label)
    for label in order:
        row = scores.rows.setdefault(label, WrittenRow({q.name: None for q in questions}))
        for q in questions:
            if row.scores.get(q.name) is None and not by_label[label][q.name].answered:
                row.scores[q.name] = 0.0  # no answer: pre-scored 0
    folder = out / "written"
    folder.mkdir(parents=True, exist_ok=True)
    pages = {}
    for q in questions:
        entries = [(label_to_shown[label], by_label[label][q.name]) for label in order]
        pages[q.name] = folder / f"{q.name}.html"
        atomic_write(pages[q.name], question_page(spec, q, entries))
    atomic_write(out / "written_roster.json", json.dumps(
        {"assignment": spec.id, "anonymized": anonymize, "ids": roster}, indent=1, sort_keys=True))
    atomic_write(sheet_path, to_csv(scores))
    if pdf:
        print_pdfs(spec, questions, {label_to_shown[label]: by_label[label] for label in order}, out / "pdf", quiet)
    return pages


def chromium_path():
    """The headless browser used for PDFs and the browser tests, or None."""
    for candidate in (CHROMIUM, shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def print_pdfs(spec, questions, answers_by_shown, folder: Path, quiet=False) -> list:
    """One PDF per submission of its written answers, printed by headless Chromium; the paths
    written (none, with a warning, when Chromium is missing)."""
    browser = chromium_path()
    if browser is None:
        print("--pdf skipped: Chromium was not found (install it, e.g. `apt-get install chromium`, "
              "or set SEQMOD_CHROMIUM to its path)", file=sys.stderr)
        return []
    from .report import output_names
    folder.mkdir(parents=True, exist_ok=True)
    names = output_names(list(answers_by_shown))
    with tempfile.TemporaryDirectory(prefix="seqmod-pdf-") as tmp:
        def one(shown):
            page = Path(tmp) / f"{names[shown]}.html"
            page.write_text(submission_page(spec, questions, shown, answers_by_shown[shown]), encoding="utf-8")
            target = folder / f"{names[shown]}.pdf"
            command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                       "--disable-component-update", "--disable-sync", "--no-pdf-header-footer",
                       f"--user-data-dir={tmp}/profile-{names[shown]}", f"--print-to-pdf={target}", page.as_uri()]
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if done.returncode != 0 or not target.exists():
                print(f"PDF for {shown} failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
                return None
            return target
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            made = [p for p in pool.map(one, list(answers_by_shown)) if p]
    if not quiet:
        print(f"wrote {len(made)} PDF(s) in {folder}")
    return made


# ---- merging the pages' saved files -----------------------------------------------------------

def merge_saved(assignment_id, out: Path, saved_files) -> WrittenScores:
    """Fill DIR/written_scores.csv from saved page files; refuse (changing nothing) on bad input."""
    spec = assignments.get(assignment_id)
    questions = written_questions(spec)
    by_name = {q.name: q for q in questions}
    roster_path, sheet_path = out / "written_roster.json", out / "written_scores.csv"
    try:
        roster = json.loads(roster_path.read_text())["ids"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SystemExit(f"{roster_path} is missing or unreadable: run `python -m autograder written "
                         f"{assignment_id} SUBMISSIONS --out {out}` first") from None
    scores = _existing_scores(sheet_path, questions, roster.values())
    problems = []
    for path in saved_files:
        try:
            saved = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(saved, dict) or saved.get("format") != SAVED_FORMAT:
                raise ValueError("not a saved written-scores file")
        except (OSError, ValueError, UnicodeDecodeError) as error:
            problems.append(f"{path}: {error}")
            continue
        question = by_name.get(saved.get("question"))
        if saved.get("assignment") != spec.id or question is None:
            problems.append(f"{path}: saved for {saved.get('assignment')!r} question {saved.get('question')!r}, "
                            f"not a written question of {spec.id}")
            continue
        if saved.get("page") != page_key(spec.id, question):
            problems.append(f"{path}: saved against another rubric of {question.name}; "
                            "regenerate the page and grade again")
            continue
        answers = saved.get("answers")
        if not isinstance(answers, dict):
            problems.append(f"{path}: no answers in the file")
            continue
        for shown, entry in answers.items():
            where = f"{path}, answer {shown!r}"
            if shown not in roster:
                problems.append(f"{where}: not a submission on this page's roster")
                continue
            try:
                ticked = sorted({int(i) for i in entry.get("ticked", [])})
                comment = str(entry.get("comment", ""))
                scored = bool(entry.get("scored"))
            except (AttributeError, TypeError, ValueError):
                problems.append(f"{where}: malformed entry")
                continue
            if any(not 0 <= i < len(question.rubric) for i in ticked):
                problems.append(f"{where}: a ticked item does not exist in the rubric")
                continue
            row = scores.rows.setdefault(roster[shown], WrittenRow({q.name: None for q in questions}))
            if scored:
                row.scores[question.name] = sum(question.rubric[i].points for i in ticked)
                row.items[question.name] = [i + 1 for i in ticked]
            parts = split_comment(row.comment, list(by_name))
            parts[question.name] = " ".join(comment.split())
            row.comment = join_comment(parts, list(by_name))
    if problems:
        raise WrittenScoresError("--merge-saved", problems)
    atomic_write(sheet_path, to_csv(scores))
    return scores


def run(args) -> int:
    """`python -m autograder written`: write the grading pages, or merge saved scores; the exit code."""
    try:
        if args.merge_saved:
            scores = merge_saved(args.assignment, args.out, args.merge_saved)
            done = {q.name: sum(1 for r in scores.rows.values() if r.scores.get(q.name) is not None)
                    for q in scores.questions}
            print(f"merged {len(args.merge_saved)} file(s) into {args.out / 'written_scores.csv'}; scored: "
                  + ", ".join(f"{name} {count}/{len(scores.rows)}" for name, count in done.items()))
            return 0
        if not args.paths:
            print("error: give the submissions (or --merge-saved FILE...)", file=sys.stderr)
            return 2
        pages = make_pages(args.assignment, args.paths, args.out, args.anonymize, args.pdf)
    except WrittenScoresError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for page in pages.values():
        print(f"wrote {page}")
    print(f"scores sheet: {args.out / 'written_scores.csv'}")
    return 0
