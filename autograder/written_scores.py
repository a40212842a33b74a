"""written_scores.csv: the TA's written scores, one row per submission, and what grade does with it.

Columns: `file`, one column per written question (its score; empty = not scored yet), `comment`,
then `<question> items` per question (the rubric items ticked, numbered from 1, e.g. "1 3").
The second row holds each question's points, as in grades.csv. A TA may fill the file by hand
or let `python -m autograder written ... --merge-saved` fill it from the pages' saved files.
"""
import csv
import io
import math
import re
from dataclasses import dataclass, field

POINTS_ROW = "points-per-question"
COMMENT = "comment"
ITEMS_SUFFIX = " items"


class WrittenScoresError(ValueError):
    """Bad written scores; `problems` names each row and column."""

    def __init__(self, path, problems):
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:30])
        more = f"\n  ... and {len(self.problems) - 30} more" if len(self.problems) > 30 else ""
        super().__init__(f"{path}: refused, nothing was written:\n{shown}{more}")


@dataclass
class WrittenRow:
    """One submission's written scores: points per question, rubric items ticked, a comment."""

    scores: dict = field(default_factory=dict)     # question -> float, or None when not scored
    items: dict = field(default_factory=dict)      # question -> [item numbers from 1]
    comment: str = ""


@dataclass
class WrittenScores:
    """The written score sheet of an assignment: its questions and one row per submission."""

    questions: list                                # WrittenQuestion, in column order
    rows: dict                                     # file label -> WrittenRow

    @property
    def points(self) -> float:
        """The written questions' points together."""
        return sum(q.points for q in self.questions)

    def row(self, label) -> WrittenRow:
        """The row of `label`; an unscored one when the sheet has none."""
        return self.rows.get(label) or WrittenRow({q.name: None for q in self.questions})

    def total(self, label):
        """The written total, or None while any question of the row is not scored."""
        scores = [self.row(label).scores.get(q.name) for q in self.questions]
        return None if any(s is None for s in scores) else sum(scores)


def fmt(value) -> str:
    """A number as the score sheet writes it ("" for None)."""
    return "" if value is None else f"{value:g}"


def split_comment(text: str, names) -> dict:
    """{question or "": text} from a comment cell written as lines "q4: ..."."""
    parts = {}
    for line in str(text).split("\n"):
        match = re.match(r"^(\S+): (.*)$", line)
        key, body = (match.group(1), match.group(2)) if match and match.group(1) in names else ("", line)
        if body.strip():
            parts[key] = (parts[key] + " " + body.strip()) if key in parts else body.strip()
    return parts


def join_comment(parts: dict, names) -> str:
    """A comment cell from `split_comment`'s parts: the general part, then one line per question."""
    lines = [parts[""]] if parts.get("") else []
    lines += [f"{name}: {' '.join(parts[name].split())}" for name in names if parts.get(name, "").strip()]
    return "\n".join(lines)


def header(questions) -> list:
    """The score sheet's column names."""
    return ["file", *[q.name for q in questions], COMMENT, *[q.name + ITEMS_SUFFIX for q in questions]]


def to_csv(scores: WrittenScores, order=None) -> str:
    """The score sheet as CSV text, rows in `order` (by label by default)."""
    from .report import _cell
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header(scores.questions))
    writer.writerow([POINTS_ROW, *[fmt(q.points) for q in scores.questions], "",
                     *[" ".join(f"{r.points:g}" for r in q.rubric) for q in scores.questions]])
    for label in order or sorted(scores.rows):
        row = scores.row(label)
        writer.writerow([_cell(label), *[fmt(row.scores.get(q.name)) for q in scores.questions],
                         _cell(row.comment) if row.comment else "",
                         *[" ".join(map(str, row.items.get(q.name, []))) for q in scores.questions]])
    return buffer.getvalue()


def _number(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def parse(text: str, questions, class_files, path="written scores", assignment="this assignment") -> WrittenScores:
    """Read and check a written_scores.csv; raise WrittenScoresError naming every bad row and column.

    `class_files`: the `file` labels of the class (rows for other files are refused)."""
    by_name = {q.name: q for q in questions}
    problems = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        columns = next(reader)
    except StopIteration:
        raise WrittenScoresError(path, ["the file is empty (expected a header row starting with `file`)"]) from None
    columns = [c.strip() for c in columns]
    if not columns or columns[0] != "file":
        raise WrittenScoresError(path, ["row 1, column 1: the first column must be `file`"])
    seen = set()
    for number, name in enumerate(columns[1:], start=2):
        base = name[: -len(ITEMS_SUFFIX)] if name.endswith(ITEMS_SUFFIX) else name
        if name in seen:
            problems.append(f"row 1, column {number} ({name}): appears twice")
        seen.add(name)
        if name != COMMENT and base not in by_name:
            known = ", ".join(by_name) or "none"
            problems.append(f"row 1, column {number} ({name}): {assignment} has no written question "
                            f"{base!r} (its written questions: {known})")
    wanted = {str(f) for f in class_files}
    quoted = {"'" + f: f for f in wanted if f[:1] in ("=", "+", "-", "@", "\t", "\r")}
    rows = {}
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        cells = cells + [""] * (len(columns) - len(cells))
        label = cells[0]
        if label == POINTS_ROW:
            continue
        label = quoted.get(label, label)
        where = f"row {line} (file {label!r})"
        if len(cells) > len(columns):
            problems.append(f"{where}: {len(cells)} cells but the header has {len(columns)} columns")
        if label not in wanted:
            problems.append(f"{where}, column file: not a submission of this class")
            continue
        if label in rows:
            problems.append(f"{where}, column file: a second row for the same file")
            continue
        row = WrittenRow({q.name: None for q in questions})
        for name, value in zip(columns[1:], cells[1:]):
            value = value.strip()
            if name == COMMENT:
                row.comment = value[1:] if value[:2] in ("'=", "'+", "'-", "'@") else value
                continue
            if name.endswith(ITEMS_SUFFIX) and name[: -len(ITEMS_SUFFIX)] in by_name:
                question = by_name[name[: -len(ITEMS_SUFFIX)]]
                try:
                    items = [int(v) for v in value.replace(",", " ").split()]
                except ValueError:
                    problems.append(f"{where}, column {name}: {value!r} is not a list of item numbers")
                    continue
                bad = [i for i in items if not 1 <= i <= len(question.rubric)]
                if bad:
                    problems.append(f"{where}, column {name}: item {bad[0]} does not exist "
                                    f"({question.name} has {len(question.rubric)} rubric items)")
                row.items[question.name] = sorted(set(items))
                continue
            if name not in by_name or not value:
                continue
            try:
                score = _number(value)
            except ValueError:
                problems.append(f"{where}, column {name}: {value!r} is not a number")
                continue
            if score < 0:
                problems.append(f"{where}, column {name}: {score:g} is below 0")
            elif score > by_name[name].points:
                problems.append(f"{where}, column {name}: {score:g} is above the question's "
                                f"{by_name[name].points:g} points")
            else:
                row.scores[name] = score
        rows[label] = row
    if problems:
        raise WrittenScoresError(path, problems)
    return WrittenScores(list(questions), rows)


def load(path, spec, class_files) -> WrittenScores:
    """The score sheet at `path`, checked against the assignment and the class's files."""
    from .written_questions import written_questions
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise WrittenScoresError(path, [f"cannot be read: {error}"]) from None
    return parse(text, written_questions(spec), class_files, str(path), spec.id)


# ---- what grade does with the scores: grades.csv columns, feedback, summary -------------------

def grade_columns(scores: WrittenScores) -> list:
    """The columns the written part adds to grades.csv."""
    return [*[q.name for q in scores.questions], "written_total", "course_total"]


def grade_points(scores: WrittenScores, otter_points: float) -> list:
    """The points row's cells for those columns."""
    return [*[fmt(q.points) for q in scores.questions], fmt(scores.points), fmt(otter_points + scores.points)]


def grade_cells(scores: WrittenScores, result) -> list:
    """One submission's cells for those columns (totals empty while any question is unscored)."""
    row = scores.row(result["file"])
    total = scores.total(result["file"])
    course = None if total is None else result["total"] + total
    return [*[fmt(row.scores.get(q.name)) for q in scores.questions], fmt(total), fmt(course)]


def feedback_lines(scores: WrittenScores, result, plain) -> list:
    """Markdown lines for a student's feedback; `plain` neutralises TA text."""
    row = scores.row(result["file"])
    total = scores.total(result["file"])
    lines = ["## Written questions", ""]
    comments = split_comment(row.comment, [q.name for q in scores.questions])
    for q in scores.questions:
        score = row.scores.get(q.name)
        lines.append(f"### {q.name}: {'not scored yet' if score is None else fmt(score)} / {fmt(q.points)}")
        for number in row.items.get(q.name, []):
            item = q.rubric[number - 1]
            lines.append(f"- [x] {plain(item.text)} ({fmt(item.points)} pt)")
        if comments.get(q.name):
            lines.append(f"- Comment: {plain(comments[q.name])}")
        lines.append("")
    if comments.get(""):
        lines += [f"Comment: {plain(comments[''])}", ""]
    if total is None:
        lines.append(f"Written total: not complete yet (out of {fmt(scores.points)}).")
    else:
        course = result["total"] + total
        lines.append(f"Written total: {fmt(total)} / {fmt(scores.points)}  ")
        lines.append(f"**Course total: {fmt(course)} / {fmt(result['possible'] + scores.points)}**")
    return lines


def summary_lines(questions, results, scores, answered, plain) -> list:
    """The written questions in summary.md. `answered`: {file: {question: bool}} (may lack rows)."""
    lines = ["", "## Written questions", ""]
    if not questions:
        return lines + ["(this assignment has none)"]
    lines += ["| question | points | answered | scored | mean | scores (value: count) |", "|---|---|---|---|---|---|"]
    for q in questions:
        known = [answered[r["file"]][q.name] for r in results if q.name in answered.get(r["file"], {})]
        answered_text = f"{sum(known)}/{len(known)}" if known else "-"
        if scores is None:
            lines.append(f"| {q.name} | {fmt(q.points)} | {answered_text} | not merged | - | - |")
            continue
        given = [scores.row(r["file"]).scores.get(q.name) for r in results]
        values = sorted(v for v in given if v is not None)
        counts = ", ".join(f"{v:g}: {values.count(v)}" for v in sorted(set(values)))
        mean = f"{sum(values) / len(values):.2f}" if values else "-"
        lines.append(f"| {q.name} | {fmt(q.points)} | {answered_text} | {len(values)}/{len(results)} | {mean} | "
                     f"{counts or '-'} |")
    lines.append("")
    if scores is None:
        return lines + ["Written scores not merged yet: `python -m autograder grade ... --written written_scores.csv`."]
    missing = [(r["file"], [q.name for q in questions if scores.row(r["file"]).scores.get(q.name) is None])
               for r in results]
    missing = [(f, names) for f, names in missing if names]
    lines += ["### Not yet scored", ""]
    lines += [f"- {plain(f)}: {', '.join(names)}" for f, names in missing] or ["(every submission is scored)"]
    return lines
