"""What the TA reads: grades.csv (otter's columns), per-student feedback, and a summary; and the
names of the files they are written to."""
import csv
import hashlib
import io
import json
import re
from pathlib import Path

from . import integrity, sanitize, settings
from .files import atomic_write, replacing
from .results import CaseResult, Outcome, Status, outcome_of, reduced_isolation
from .testfiles import load_questions

POINTS_ROW = "points-per-question"


def short_digest(text: str, length=10) -> str:
    """The first `length` hex digits of the SHA-256 of `text` (any str, lone surrogates too)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def safe_name(label: str) -> str:
    """A file name for a submission's outputs that no other label shares.

    Readable where the label is already a plain name; where characters had to be replaced or
    the name shortened, a digest of the label is appended ("a b.ipynb" and "a_b.ipynb" differ).
    """
    keep = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in label)
    if keep != label or len(keep) > 120 or not keep.strip("."):
        keep = keep[:100] + "-" + short_digest(label)
    return keep


def output_names(labels) -> dict:
    """{label: file name} for a batch; labels that differ only in case (one file on macOS or
    Windows) get a digest too."""
    names = {label: safe_name(label) for label in labels}
    folded = {}
    for name in names.values():
        folded[name.casefold()] = folded.get(name.casefold(), 0) + 1
    for label, name in names.items():
        if folded[name.casefold()] > 1:
            names[label] = name + "-" + short_digest(label)
    return names


def result_path(results_dir: Path, submission) -> Path:
    """One result file per input file, named by where it lies (labels are for people)."""
    return results_dir / f"{safe_name(submission.label)[:60]}-{short_digest(submission.identity, 16)}.json"


def saved_rows(results_dir: Path, spec) -> dict:
    """{input file: its saved row} for rows saved in `results_dir` against the same questions
    and points as now (half-written or foreign files are passed over)."""
    shape = {q.name: q.possible for q in load_questions(spec.zip_path)}
    rows = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            row = json.loads(path.read_text())
            source, label = row["source"], row["file"]
            same_tests = set(row["questions"]) == set(shape) and all(
                row["questions"][q]["possible"] <= shape[q] for q in shape)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue
        if row.get("assignment") != spec.id or not same_tests or not isinstance(label, str):
            continue
        if source not in rows or path.stat().st_mtime > rows[source]["_path"].stat().st_mtime:
            rows[source] = dict(row, _path=path)
    return rows


def align_gpu_exclusions(results):
    """Rows that could not run at all leave out the same CUDA-only tests as the rows that ran,
    under the 'exclude' policy, so that every row counts out of the same total."""
    skipped = {name for r in results for name in r.get("skipped", [])}
    if not skipped:
        return
    for r in results:
        cases = [c for q in r["questions"].values() for c in q["cases"]]
        if r.get("gpu_policy") != settings.GPU_EXCLUDE or r.get("skipped") or any(c.get("passed") for c in cases):
            continue
        if not any(CaseResult.from_dict(c).reached for c in cases):
            for q in r["questions"].values():
                q["possible"] -= sum(c["points"] for c in q["cases"] if c["name"] in skipped)
            r["possible"] = sum(q["possible"] for q in r["questions"].values())


def _fmt(x):
    return f"{x:g}"


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula (`text` is sanitized)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def points_per_question(results, questions) -> dict:
    """What each question is out of: the value most rows agree on (the full points if no rows)."""
    points = {}
    for q in questions:
        seen = [r["questions"][q.name]["possible"] for r in results if q.name in r["questions"]]
        points[q.name] = max(set(seen), key=seen.count) if seen else q.possible
    return points


def grades_csv(results, questions, scores=None) -> str:
    """otter's columns; with written `scores`, the written columns and totals after them."""
    names = sorted({q.name for q in questions} | {q for r in results for q in r["questions"]})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    from . import written_scores as ws
    extra = ws.grade_columns(scores) if scores else []
    writer.writerow(["file", *names, "total_points_earned", "percent_correct", "grading_status", *extra])
    possible = points_per_question(results, questions)
    writer.writerow([POINTS_ROW, *[_fmt(possible.get(q, 0)) for q in names],
                     _fmt(sum(possible.values())), "1", "--",
                     *(ws.grade_points(scores, sum(possible.values())) if scores else [])])
    for r in results:
        cells = [_fmt(r["questions"].get(q, {}).get("score", 0)) for q in names]
        percent = r["total"] / r["possible"] if r.get("possible") else 0.0
        writer.writerow([_cell(sanitize.name(r["file"])), *cells, _fmt(r["total"]), f"{percent:.4g}",
                         _cell(sanitize.line(status_text(r), 2000)),
                         *(ws.grade_cells(scores, r) if scores else [])])
    return buffer.getvalue()


def status_text(result) -> str:
    """The grading status a TA reads: the outcome, with what else about the row they should know."""
    outcome = outcome_of(result)
    notes = [str(n) for n in result.get("notes", [])]
    if result.get("skipped"):
        how = "left out of the total" if result.get("gpu_policy") == settings.GPU_EXCLUDE else "scored 0: GPU required"
        notes.append(f"{len(result['skipped'])} CUDA test(s) not run, no GPU; {how}")
    if reduced_isolation(result):
        notes.append("reduced isolation: namespaces unavailable")
    if result.get("incidents") and outcome.status is Status.COMPLETED:
        notes.append(f"{len(result['incidents'])} test(s) crashed the notebook")
    if not notes:
        return outcome.text
    if outcome.status is Status.COMPLETED_WITH_NOTES:  # one parenthesis, not two
        return Outcome.completed_with([outcome.detail, *notes]).text
    return outcome.text + " (" + "; ".join(notes) + ")"


def _code(text, limit=2000) -> str:
    """Text a student's code wrote, shown as inline code: no headings, links or HTML can come
    out of it (the fence is longer than any run of backticks inside)."""
    text = sanitize.line(text, limit)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


def _plain(text) -> str:
    """Our own messages, which may quote names in backticks, kept on one line; markdown that
    could only come from a student's text (headings, HTML, links) is neutralised."""
    text = sanitize.line(text, 2000)
    for char in "<>[]":
        text = text.replace(char, "\\" + char)
    return text


def feedback(result, written=None) -> str:
    """One student's feedback file (Markdown): score, status, and each test's verdict and message."""
    lines = [f"# Feedback: {result.get('assignment')} ({_plain(result.get('file'))})", "",
             f"**Score: {_fmt(result['total'])} / {_fmt(result['possible'])}**  ",
             f"Status: {_plain(status_text(result))}", ""]
    for name, q in sorted(result["questions"].items()):
        lines.append(f"## {name}: {_fmt(q['score'])} / {_fmt(q['possible'])}")
        for case in q["cases"]:
            mark = "passed" if case["passed"] else ("not run" if case.get("skipped") else "FAILED")
            kind = "hidden" if case["hidden"] else "public"
            lines.append(f"- {mark}: `{case['name']}` ({kind}, {_fmt(case['points'])} pt)")
            if not case["passed"]:
                lines.append(f"  - {_plain(case['message'])}")
        lines.append("")
    record = result.get("integrity") if isinstance(result.get("integrity"), dict) else {}
    if record.get("voided") and not record.get("accepted"):
        lines.append("## Measurements that could not be trusted")
        lines.append("The op counts or timings of these tests are measured while your code runs, and something "
                     "in your notebook interfered with that measurement, so these tests score 0 and a TA will "
                     "review your submission:")
        lines += [f"- `{_plain(v['test'])}`: {_plain(v['reason'])}" for v in record["voided"]]
        lines.append("")
    if result.get("cell_errors"):
        lines.append("## Cells that raised errors when your notebook ran top to bottom")
        for error in result["cell_errors"][:10]:
            lines.append(f"- code cell {int(error['cell']) + 1}: {_code(error['error'], 300)}")
        lines.append("")
    if written and written.get("scores"):
        from .written_scores import feedback_lines
        lines += feedback_lines(written["scores"], result, _plain)
    else:
        lines.append("Written questions are graded by hand and are not part of this score.")
    return "\n".join(lines) + "\n"


def _fallback_feedback(result, error) -> str:
    return (f"# Feedback: {_plain(result.get('file'))}\n\n**Score: {_fmt(result.get('total', 0))} / "
            f"{_fmt(result.get('possible', 0))}**\n\n(The detailed feedback could not be written: "
            f"{type(error).__name__}. Ask your TA.)\n")


def score_table(results) -> str:
    """A plain-text table of every submission's score per question (the demo prints it)."""
    if not results:
        return "no submissions found"
    questions = sorted({q for r in results for q in r["questions"]})
    names = {id(r): sanitize.name(r["file"], 80) for r in results}
    width = max(12, *(len(shown) for shown in names.values()))
    head = f"{'file':<{width}} " + " ".join(f"{q:>6}" for q in questions) + "   total  status"
    rows = [head, "-" * len(head)]
    for r in results:
        cells = " ".join(f"{_fmt(r['questions'].get(q, {}).get('score', 0)):>6}" for q in questions)
        rows.append(f"{names[id(r)]:<{width}} {cells}  {_fmt(r['total']):>3}/{_fmt(r['possible'])}  "
                    f"{sanitize.line(status_text(r), 300)}")
    return "\n".join(rows)


def summary(results, seconds, questions=(), written=None) -> str:
    """The TA's summary.md: totals, what did not complete, integrity reviews, slowest tests."""
    lines = ["# Grading summary", "", f"{len(results)} submissions, graded in {seconds:.0f} s.", ""]
    if not results:
        return "\n".join(lines + ["No submissions were found in the paths given."]) + "\n"
    totals = sorted(r["total"] for r in results)
    possible = sum(points_per_question(results, questions).values()) if questions else results[0]["possible"]
    lines += [f"Mean {sum(totals) / len(totals):.2f} / {_fmt(possible)}, median {totals[len(totals) // 2]:g}.",
              "", "![score histogram](score_histogram.png)", "", "## Pass rate per test", "",
              "| question | test | kind | passed | median time |", "|---|---|---|---|---|"]
    names = [(q, c["name"], c["hidden"]) for q, data in sorted(results[0]["questions"].items()) for c in data["cases"]]
    for q, case_name, hidden in names:
        cases = [c for r in results for c in r["questions"].get(q, {}).get("cases", []) if c["name"] == case_name]
        passed = sum(1 for c in cases if c["passed"])
        times = sorted(c["seconds"] for c in cases if isinstance(c.get("seconds"), (int, float)))
        median = f"{times[len(times) // 2]:.2f} s" if times else "-"
        lines.append(f"| {q} | {case_name} | {'hidden' if hidden else 'public'} | {passed}/{len(results)} | {median} |")
    not_completed = [r for r in results if not outcome_of(r).completed]
    lines += ["", "## Submissions that did not complete", ""]
    lines += [f"- {_plain(r['file'])}: {_plain(r['status'])}" for r in not_completed] or ["(none)"]
    lines += ["", "## Integrity review", ""]
    flagged = [r for r in results if isinstance(r.get("integrity"), dict) and r["integrity"].get("review")]
    for r in flagged:
        state = "accepted by a TA, measurements trusted" if r["integrity"].get("accepted") else (
            "measurements voided" if r["integrity"].get("voided") else "flagged, no points lost")
        lines.append(f"- {_plain(r['file'])} ({state})")
        lines += [f"  - {_code(line, 300)}" for line in integrity.evidence(r["integrity"])]
    if not flagged:
        lines.append("(none)")
    skipped = [r for r in results if r.get("skipped")]
    if skipped:
        lines += ["", "## Tests not run", "",
                  f"{len(skipped)} submission(s) had CUDA tests that did not run: no GPU on the grading machine."]
    slow = sorted((r for r in results if r.get("seconds")), key=lambda r: -r["seconds"])[:5]
    lines += ["", "## Slowest submissions", ""] + [
        f"- {_plain(r['file'])}: {r['seconds']:.1f} s" + (f" (its notebook {r['notebook_seconds']:.1f} s)"
                                                  if isinstance(r.get("notebook_seconds"), (int, float)) else "")
        for r in slow]
    isolation = {r.get("isolation") for r in results if r.get("isolation")}
    lines += ["", f"Isolation: {', '.join(sorted(isolation)) or 'n/a'}."]
    if written:
        from .written_scores import summary_lines
        lines += summary_lines(written["questions"], results, written["scores"], written["answered"], _plain)
    return "\n".join(lines) + "\n"


def histogram_png(results, path: Path, possible=None):
    """Write the score distribution of `results` to `path` as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    totals = [r["total"] for r in results]
    possible = possible or (results[0]["possible"] if results else 1) or 1
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(totals, bins=min(20, max(5, int(possible) + 1)), range=(0, possible), color="#4477aa")
    ax.set_xlabel("total points")
    ax.set_ylabel("submissions")
    ax.set_title("Score distribution")
    fig.tight_layout()
    try:
        with replacing(path) as temporary:
            fig.savefig(temporary, format="png", dpi=100, metadata={"Software": None})
    finally:
        plt.close(fig)


def write_all(spec, results, out: Path, seconds: float, written=None):
    """`written`: {"questions", "answered", "scores"} from grade.written_part, or None."""
    questions = load_questions(spec.zip_path)
    align_gpu_exclusions(results)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "grades.csv", grades_csv(results, questions, written and written["scores"]))
    (out / "feedback").mkdir(exist_ok=True)
    names = output_names([r["file"] for r in results])
    for r in results:
        try:
            text = feedback(r, written)
        except Exception as error:  # noqa: BLE001 - one odd row must not cost the others theirs
            text = _fallback_feedback(r, error)
        atomic_write(out / "feedback" / (names[r["file"]] + ".md"), text)
    current = {names[r["file"]] + ".md" for r in results}
    for stale in (out / "feedback").glob("*.md"):  # of files no longer graded: not to be handed out
        try:
            if stale.name not in current and stale.read_text(errors="replace").startswith("# Feedback"):
                stale.unlink()
        except OSError:
            pass
    atomic_write(out / "summary.md", summary(results, seconds, questions, written))
    if results:
        histogram_png(results, out / "score_histogram.png", sum(points_per_question(results, questions).values()))
