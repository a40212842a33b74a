"""The questions of a master notebook: prompt, points, model answer, rubric and key facts.

A question starts at a raw `# BEGIN QUESTION` cell whose remaining lines are YAML (otter's
question config). Besides otter's keys (`name`, `manual`, `points`) the course adds two that otter
ignores and the build strips from the student notebook:

    rubric:                       # written questions: items whose points add up to `points`
      - {points: 1, item: "what earns this point"}
    key_facts: ["O(n d^2)", "sigma_k"]   # short strings that state the answer

See docs/AUTHORING.md and the two build checks in autograder/build.py.
"""
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .notebook_shape import read_trusted

BEGIN_QUESTION, END_QUESTION = "# BEGIN QUESTION", "# END QUESTION"
BEGIN_SOLUTION, END_SOLUTION = "# BEGIN SOLUTION", "# END SOLUTION"
BEGIN_TESTS, END_TESTS = "# BEGIN TESTS", "# END TESTS"
ANSWER_PLACEHOLDER = "_Type your answer here, replacing this text._"
COURSE_KEYS = ("rubric", "key_facts")


@dataclass(frozen=True)
class RubricItem:
    """One rubric line of a written question: its points and what earns them."""

    points: float
    text: str


@dataclass(frozen=True)
class Question:
    """One question of a master notebook, as its `# BEGIN QUESTION` config and cells define it."""

    name: str
    points: float | None
    manual: bool
    prompt: str
    model_answer: str
    rubric: tuple
    key_facts: tuple
    first_cell: int
    last_cell: int = -1  # index of the `# END QUESTION` raw cell


class QuestionError(ValueError):
    """A question config that cannot be read; the message names the question or cell."""


def _marker(cell) -> str:
    return cell.source.strip().split("\n", 1)[0].strip() if cell.cell_type == "raw" else ""


def question_config(cell) -> dict:
    """The YAML under `# BEGIN QUESTION` in a raw cell."""
    body = cell.source.strip().split("\n", 1)
    try:
        config = yaml.safe_load(body[1]) if len(body) > 1 else {}
    except yaml.YAMLError as error:
        raise QuestionError(f"question config is not valid YAML:\n{cell.source}\n{error}") from None
    if not isinstance(config, dict) or "name" not in config:
        raise QuestionError(f"question config needs a `name`:\n{cell.source}")
    return config


def strip_course_keys(source: str) -> str:
    """A `# BEGIN QUESTION` cell's source without the `rubric:` and `key_facts:` entries."""
    lines = source.split("\n")
    kept, skipping = [], False
    for line in lines:
        top_level = line[:1] not in (" ", "\t", "-", "") and ":" in line
        if top_level:
            skipping = line.split(":", 1)[0].strip() in COURSE_KEYS
        elif skipping and not line.strip():
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept).rstrip("\n")


def _rubric(name, raw) -> tuple:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise QuestionError(f"{name}: `rubric` must be a list of {{points, item}} entries")
    items = []
    for entry in raw:
        if not isinstance(entry, dict) or set(entry) != {"points", "item"}:
            raise QuestionError(f"{name}: rubric entry {entry!r} must have exactly `points` and `item`")
        if isinstance(entry["points"], bool) or not isinstance(entry["points"], (int, float)):
            raise QuestionError(f"{name}: rubric entry {entry['item']!r} has non-numeric points")
        items.append(RubricItem(float(entry["points"]), str(entry["item"])))
    return tuple(items)


def _key_facts(name, raw) -> tuple:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(f, str) and normalize_fact(f) for f in raw):
        raise QuestionError(f"{name}: `key_facts` must be a list of non-empty strings")
    return tuple(raw)


def questions(master) -> list:
    """Every question of a master notebook (an nbformat notebook or a path), in order."""
    if isinstance(master, (str, Path)):
        master = read_trusted(master)
    cells = master.cells
    found = []
    index = 0
    while index < len(cells):
        if _marker(cells[index]) != BEGIN_QUESTION:
            index += 1
            continue
        first = index
        config = question_config(cells[first])
        name = str(config["name"])
        last = next((i for i in range(first + 1, len(cells)) if _marker(cells[i]) == END_QUESTION), None)
        if last is None:
            raise QuestionError(f"{name}: no `# END QUESTION` after its `# BEGIN QUESTION` (cell {first})")
        prompt = []
        position = first + 1
        while (position < last and cells[position].cell_type == "markdown"
               and cells[position].source.strip() != ANSWER_PLACEHOLDER):
            prompt.append(cells[position].source)
            position += 1
        manual = bool(config.get("manual", False))
        answer = []
        if manual:
            inside = False
            for cell in cells[position:last]:
                marker = _marker(cell)
                if marker == BEGIN_SOLUTION:
                    inside = True
                elif marker == END_SOLUTION:
                    inside = False
                elif inside and cell.cell_type == "markdown":
                    answer.append(cell.source)
        points = config.get("points")
        if isinstance(points, list):  # otter allows points per test case
            points = sum(points)
        found.append(Question(
            name=name, points=None if points is None else float(points), manual=manual,
            prompt="\n\n".join(prompt), model_answer="\n\n".join(answer),
            rubric=_rubric(name, config.get("rubric")), key_facts=_key_facts(name, config.get("key_facts")),
            first_cell=first, last_cell=last))
        index = last + 1
    return found


def written_questions(master) -> list:
    """The manual (TA-graded) questions."""
    return [q for q in questions(master) if q.manual]


_IGNORED = re.compile(r"[\s$\\{}]+")


def normalize_fact(text: str) -> str:
    """Text reduced for matching key facts: lower case, and whitespace, `$`, backslashes and
    braces removed, so `$O(n d^2)$`, `O(nd^2)` and `O(N D^{2})` all become `o(nd^2)`, and
    `\\sigma_{k+1}` becomes `sigma_k+1`. Nothing else changes (`^`, `_`, digits and words stay)."""
    return _IGNORED.sub("", text.lower())
