"""The written questions of an assignment and where a submission answers each of them.

A written question's answer is the run of cells between its prompt and the end of the question.
In a submission it is found by the cell id the build gave the answer cell, else by position after
the prompt (matched by its text), so a notebook whose ids were rewritten (some editors do) or
whose student added cells still gives its answer.
"""
from dataclasses import dataclass, field

from .notebook_shape import answers_notebook, read_trusted
from .questions import ANSWER_PLACEHOLDER as PLACEHOLDER
from .questions import written_questions as written_questions_of_master

BEGIN_MARK = "<!-- BEGIN QUESTION -->"
END_MARK = "<!-- END QUESTION -->"


@dataclass(frozen=True)
class RubricLine:
    """One rubric line: its points and what earns them."""

    points: float
    text: str


@dataclass
class WrittenQuestion:
    """A written (manually graded) question of an assignment, as the TA grades it."""

    name: str
    points: float
    prompt: str
    model_answer: str
    rubric: list
    prompt_cell_id: str = ""
    answer_cell_id: str = ""
    fixed_ids: frozenset = field(default_factory=frozenset)  # every id in the released notebook


def _master_questions(master) -> list:
    """(name, points, prompt, model answer, [(points, text)]) of each written question."""
    return [(q.name, float(q.points or 0), q.prompt, q.model_answer, [(float(r.points), r.text) for r in q.rubric])
            for q in written_questions_of_master(master)]


def _plain(text: str) -> str:
    return " ".join(text.replace(BEGIN_MARK, "").replace(END_MARK, "").split())


def written_questions(spec) -> list:
    """The assignment's written questions, with the ids of their cells in the released notebook."""
    master = read_trusted(spec.master)
    student = read_trusted(spec.student)
    ids = frozenset(c.get("id", "") for c in student.cells)
    questions = []
    for name, points, prompt, model, rubric in _master_questions(master):
        question = WrittenQuestion(name, points, prompt, model, [RubricLine(p, t) for p, t in rubric],
                                   fixed_ids=ids)
        start = _prompt_index(student.cells, prompt)
        if start is not None:
            question.prompt_cell_id = student.cells[start].get("id", "")
            following = student.cells[start + 1] if start + 1 < len(student.cells) else None
            if following is not None and following.source.strip() == PLACEHOLDER:
                question.answer_cell_id = following.get("id", "")
        questions.append(question)
    return questions


def _prompt_index(cells, prompt):
    first = _plain(prompt)[:120]
    if not first:
        return None
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown" and _plain(cell.source).startswith(first):
            return index
    return None


@dataclass
class Answer:
    """A submission's answer to one written question: its cells and how they were found."""

    cells: list                # the submission's cells that make up the answer
    located: str = ""          # "cell id", "after the prompt", or "" when not found

    @property
    def text(self) -> str:
        """The answer's markdown, cells joined by blank lines."""
        return "\n\n".join(c.source for c in self.cells if c.cell_type == "markdown")

    @property
    def answered(self) -> bool:
        """Whether the student wrote anything beyond the placeholder."""
        for cell in self.cells:
            source = cell.source.replace(END_MARK, "").strip()
            if cell.cell_type == "markdown" and source and source != PLACEHOLDER:
                return True
            if cell.cell_type == "code" and source:
                return True
        return False


def _ends_answer(cell, question) -> bool:
    """A cell that belongs to the notebook, not to the student's answer."""
    if BEGIN_MARK in cell.source or END_MARK in cell.source:
        return True
    cell_id = cell.get("id", "")
    return bool(cell_id) and cell_id in question.fixed_ids and cell_id != question.answer_cell_id


def find_answer(nb, question) -> Answer:
    """The cells of `nb` that answer `question`: by the answer cell's id, else those after the
    question's prompt."""
    cells = nb.cells
    start, how = None, ""
    if question.answer_cell_id:
        hits = [i for i, c in enumerate(cells) if c.get("id") == question.answer_cell_id]
        if len(hits) == 1 and BEGIN_MARK not in cells[hits[0]].source:
            start, how = hits[0], "cell id"
    if start is None:
        prompt = _prompt_index(cells, question.prompt)
        if prompt is not None:
            start, how = prompt + 1, "after the prompt"
    if start is None:
        return Answer([], "")
    end = start + 1 if how == "cell id" else start  # the answer cell itself is the student's
    while end < len(cells) and not _ends_answer(cells[end], question):
        end += 1
    return Answer(list(cells[start:end]), how)


# Reading a submission for its answers is bounded like grading it: a notebook made costly to read
# (200,000 odd outputs) would otherwise hold up the whole batch's reports.
READ_SECONDS = 30
READ_MEMORY_MB = 2048


def read_notebook(data: bytes):
    """The notebook in `data` (cells with ids, sources, attachments and first outputs), or None
    when it is not one or costs too much to read (see `notebook_shape.answers_notebook`)."""
    return answers_notebook(data, READ_SECONDS, READ_MEMORY_MB)


def answers_of(data: bytes, questions) -> dict:
    """{question name: Answer} for a submission's notebook bytes (empty answers when unreadable)."""
    nb = read_notebook(data) if data else None
    if nb is None:
        return {q.name: Answer([], "") for q in questions}
    return {q.name: find_answer(nb, q) for q in questions}
