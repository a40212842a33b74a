"""What the TA reads: grades.csv (otter's columns), per-student feedback, and a summary."""
import csv
import io
import json
import os
import threading
from pathlib import Path

from .testfiles import load_questions

POINTS_ROW = "points-per-question"


def unrunnable(spec, status: str) -> dict:
    questions = load_questions(spec.zip_path)
    return {
        "assignment": spec.id, "status": status, "total": 0.0,
        "possible": sum(q.possible for q in questions),
        "questions": {q.name: {"score": 0.0, "possible": q.possible, "cases": [
            {"name": c.name, "points": c.points, "hidden": c.hidden, "passed": False,
             "message": f"not run: {status}"} for c in q.cases]} for q in questions},
        "cell_errors": [], "skipped": [],
    }


def _fmt(x):
    return f"{x:g}"


def grades_csv(results) -> str:
    questions = sorted({q for r in results for q in r["questions"]})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", *questions, "total_points_earned", "percent_correct", "grading_status"])
    if results:
        first = results[0]
        possible = {q: first["questions"][q]["possible"] for q in first["questions"]}
        writer.writerow([POINTS_ROW, *[_fmt(possible.get(q, 0)) for q in questions],
                         _fmt(sum(possible.values())), "1", "--"])
    for r in results:
        scores = [_fmt(r["questions"].get(q, {}).get("score", 0)) for q in questions]
        percent = r["total"] / r["possible"] if r.get("possible") else 0.0
        writer.writerow([r["file"], *scores, _fmt(r["total"]), f"{percent:.4g}", status_text(r)])
    return buffer.getvalue()


def status_text(result) -> str:
    status = result.get("status", "Completed")
    notes = []
    if result.get("skipped"):
        how = "left out of the total" if result.get("gpu_policy") == "exclude" else "scored 0: GPU required"
        notes.append(f"{len(result['skipped'])} CUDA test(s) not run, no GPU; {how}")
    if str(result.get("isolation", "")).startswith("process only"):
        notes.append("reduced isolation: namespaces unavailable")
    if result.get("incidents") and status == "Completed":
        notes.append(f"{len(result['incidents'])} test(s) crashed the notebook")
    return status + (" (" + "; ".join(notes) + ")" if notes else "")


def feedback(result) -> str:
    lines = [f"# Feedback: {result.get('assignment')} ({result.get('file')})", "",
             f"**Score: {_fmt(result['total'])} / {_fmt(result['possible'])}**  ",
             f"Status: {status_text(result)}", ""]
    for name, q in sorted(result["questions"].items()):
        lines.append(f"## {name}: {_fmt(q['score'])} / {_fmt(q['possible'])}")
        for case in q["cases"]:
            mark = "passed" if case["passed"] else ("not run" if case.get("skipped") else "FAILED")
            kind = "hidden" if case["hidden"] else "public"
            lines.append(f"- {mark}: `{case['name']}` ({kind}, {_fmt(case['points'])} pt)")
            if not case["passed"]:
                lines.append(f"  - {case['message']}")
        lines.append("")
    if result.get("cell_errors"):
        lines.append("## Cells that raised errors when your notebook ran top to bottom")
        for error in result["cell_errors"][:10]:
            lines.append(f"- code cell {error['cell'] + 1}: `{error['error'][:300]}`")
        lines.append("")
    lines.append("Written questions are graded by hand and are not part of this score.")
    return "\n".join(lines) + "\n"


def score_table(results) -> str:
    if not results:
        return "no submissions found"
    questions = sorted({q for r in results for q in r["questions"]})
    width = max(12, *(len(r["file"]) for r in results))
    head = f"{'file':<{width}} " + " ".join(f"{q:>6}" for q in questions) + "   total  status"
    rows = [head, "-" * len(head)]
    for r in results:
        cells = " ".join(f"{_fmt(r['questions'].get(q, {}).get('score', 0)):>6}" for q in questions)
        rows.append(f"{r['file']:<{width}} {cells}  {_fmt(r['total']):>3}/{_fmt(r['possible'])}  {status_text(r)}")
    return "\n".join(rows)


def summary(results, seconds) -> str:
    lines = ["# Grading summary", "", f"{len(results)} submissions, graded in {seconds:.0f} s.", ""]
    if not results:
        return "\n".join(lines)
    totals = sorted(r["total"] for r in results)
    possible = results[0]["possible"]
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
    not_completed = [r for r in results if not str(r.get("status", "")).startswith("Completed")]
    lines += ["", "## Submissions that did not complete", ""]
    lines += [f"- {r['file']}: {r['status']}" for r in not_completed] or ["(none)"]
    skipped = [r for r in results if r.get("skipped")]
    if skipped:
        lines += ["", "## Tests not run", "",
                  f"{len(skipped)} submission(s) had CUDA tests that did not run: no GPU on the grading machine."]
    slow = sorted((r for r in results if r.get("seconds")), key=lambda r: -r["seconds"])[:5]
    lines += ["", "## Slowest submissions", ""] + [
        f"- {r['file']}: {r['seconds']:.1f} s" + (f" (its notebook {r['notebook_seconds']:.1f} s)"
                                                  if isinstance(r.get("notebook_seconds"), (int, float)) else "")
        for r in slow]
    isolation = {r.get("isolation") for r in results if r.get("isolation")}
    lines += ["", f"Isolation: {', '.join(sorted(isolation)) or 'n/a'}."]
    return "\n".join(lines) + "\n"


def histogram_png(results, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    totals = [r["total"] for r in results]
    possible = results[0]["possible"] if results else 1
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(totals, bins=min(20, max(5, int(possible) + 1)), range=(0, possible), color="#4477aa")
    ax.set_xlabel("total points")
    ax.set_ylabel("submissions")
    ax.set_title("Score distribution")
    fig.tight_layout()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, text: str):
    """Readers see the old file or the new one, never half of one (also with two writers)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def with_earlier_rows(current, results_dir: Path, spec):
    """`current` plus the rows saved in `results_dir` by earlier runs for other files, when
    they were graded against the same questions and points; sorted by file when any are added."""
    labels = {r["file"] for r in current}
    shape = {q.name: q.possible for q in load_questions(spec.zip_path)}
    earlier = {}
    for path in results_dir.glob("*.json"):
        try:
            saved = json.loads(path.read_text())
            same_tests = {q: data["possible"] for q, data in saved["questions"].items()} == shape \
                or saved.get("gpu_policy") == "exclude" and set(saved["questions"]) == set(shape)
            label = saved["file"]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue  # not one of ours, or half-written by a run that was killed
        if saved.get("assignment") != spec.id or label in labels or not same_tests:
            continue
        if label not in earlier or path.stat().st_mtime > earlier[label][0]:
            earlier[label] = (path.stat().st_mtime, saved)
    if not earlier:
        return current
    return sorted([*current, *(saved for _, saved in earlier.values())], key=lambda r: str(r["file"]))


def write_all(spec, results, out: Path, seconds: float):
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "grades.csv", grades_csv(results))
    (out / "feedback").mkdir(exist_ok=True)
    from .grade import output_names
    names = output_names([r["file"] for r in results])
    for r in results:
        atomic_write(out / "feedback" / (names[r["file"]] + ".md"), feedback(r))
    atomic_write(out / "summary.md", summary(results, seconds))
    if results:
        histogram_png(results, out / "score_histogram.png")
