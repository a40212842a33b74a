"""The generated cells of a student notebook: course setup, otter's init, and submission.

The master notebook's setup cell is marked `# COURSE SETUP` ... `# END COURSE SETUP`; in the
student notebook that block becomes the cell below, so the course URL lives in one place
(course.toml) and a notebook opened alone (e.g. on Colab) can fetch what it needs.
"""

from . import settings

SETUP_BEGIN, SETUP_END = "# COURSE SETUP", "# END COURSE SETUP"

SETUP_TEMPLATE = '''# COURSE SETUP (generated from course.toml): use the course's checks library next to this
# notebook, or, on a fresh runtime such as Colab, download it and install missing packages.
import os
import sys
from importlib.util import find_spec
from pathlib import Path

COURSE_URL = os.environ.get("SEQMOD_COURSE_URL", {url!r})
ASSIGNMENT = {assignment!r}


def _course_library():
    if find_spec("autograder") is not None and find_spec("autograder.checks") is not None:
        return None
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "autograder" / "checks").is_dir():
            return folder
    bundle = Path.cwd() / "seqmod_course"
    if not (bundle / "autograder" / "checks").is_dir():
        import io
        import urllib.request
        import zipfile
        print(f"Downloading the course's checks library from {{COURSE_URL}} ...")
        with urllib.request.urlopen(f"{{COURSE_URL}}/notebooks/course_public.zip", timeout=120) as reply:
            zipfile.ZipFile(io.BytesIO(reply.read())).extractall(bundle)
    return bundle


_library = _course_library()
if _library is not None:
    sys.path.insert(0, str(_library))
from autograder.checks.notebook import (course_root, grading_mode, guard_stubs, install_missing_packages,
                                       public_tests_dir)

install_missing_packages(course_root() / "requirements.txt")
GRADING_MODE = grading_mode()  # graders set this; slow, ungraded parts shrink
# A cell that uses a function you have not written yet says which question to do first.
guard_stubs({questions})
'''

INIT_TEMPLATE = '''# Initialize Otter: grader.check("q1") runs the public tests of question 1.
import otter

grader = otter.Notebook({notebook!r}, tests_dir=public_tests_dir(ASSIGNMENT))'''

SUBMIT_MARKDOWN = '''## Submit

1. Save your work, then use **Kernel > Restart Kernel and Run All Cells…**
   (Colab: **Runtime > Restart session and run all**).
2. Save the notebook again (on your own machine keep the file name `{notebook}`).
3. Run the cell below. It checks that every graded function is implemented and that the cells ran
   in order, then writes `{assignment}_submission.zip`: upload that file.'''

SUBMIT_TEMPLATE = '''from autograder.checks.submit import make_submission

make_submission(
    {assignment!r},
    graded={graded},
    namespace=globals(),
)'''


def _wrapped_list(names, indent: int, width: int = 88) -> str:
    """A list literal broken over lines that fit in `width` columns (continuations at `indent`)."""
    lines = [[]]
    for name in names:
        if lines[-1] and indent + len(", ".join(lines[-1] + [repr(name)])) + 2 > width:
            lines.append([])
        lines[-1].append(repr(name))
    return "[" + (",\n" + " " * indent).join(", ".join(line) for line in lines) + "]"


def graded_questions(nb, graded) -> dict:
    """Graded name -> the question whose `grader.check` follows its definition, e.g. {"ssm_kernel": "q1"}."""
    import ast
    import re
    pending, questions = [], {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        check = re.match(r"""grader\.check\(["']([^"']+)["']\)""", cell.source.strip())
        if check:
            questions.update({name: check.group(1) for name in pending})
            pending = []
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            targets = [node.name] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else [
                t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            pending.extend(name for name in targets if name in graded and name not in questions)
    return questions


def setup_cell_source(before: str, after: str, assignment: str, questions: dict) -> str:
    """The student's setup cell: the master's code around the setup block, with the generated block between.

    `questions` maps each graded function to the question that asks for it (the stub guard's table);
    a notebook in which every function is written (the solutions handout) passes an empty one.
    """
    url = settings.course("repository_url", "")
    block = SETUP_TEMPLATE.format(url=url, assignment=assignment, questions=questions)
    return (before + block + after.lstrip("\n")).strip()


def rewrite(nb, assignment: str, graded: list):
    """Apply the generated cells to an otter-generated student notebook (in place)."""
    notebook = f"{assignment}.ipynb"
    questions = graded_questions(nb, set(graded))
    setup_index = init_index = None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if SETUP_BEGIN in cell.source and SETUP_END in cell.source:
            before, rest = cell.source.split(SETUP_BEGIN, 1)
            after = rest.split(SETUP_END, 1)[1]
            cell.source = setup_cell_source(before, after, assignment, questions)
            setup_index = index
        elif cell.source.startswith("# Initialize Otter"):
            cell.source = INIT_TEMPLATE.format(notebook=notebook)
            init_index = index
        elif "grader.export(" in cell.source:
            cell.source = SUBMIT_TEMPLATE.format(assignment=assignment, graded=_wrapped_list(sorted(graded), 12))
    if setup_index is None:
        raise SystemExit(f"{assignment}: the master needs a setup cell marked {SETUP_BEGIN} ... {SETUP_END}")
    if init_index is not None and init_index < setup_index:
        init = nb.cells.pop(init_index)
        nb.cells.insert(setup_index, init)  # after the setup cell, which shifted up by one
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## Submission"):
            cell.source = SUBMIT_MARKDOWN.format(notebook=notebook, assignment=assignment)
    while nb.cells and nb.cells[-1].cell_type == "markdown" and not nb.cells[-1].source.strip():
        nb.cells.pop()
    # otter adds an answer placeholder to each written question; drop the author's own copy
    nb.cells = [c for i, c in enumerate(nb.cells)
                if not (i and c.cell_type == "markdown" and c.source.startswith("_Type your answer here")
                        and nb.cells[i - 1].source == c.source)]
    return nb


def public_test_files(nb) -> dict:
    """Question name -> test file text, from otter's notebook metadata (public tests only)."""
    tests = nb.metadata.get("otter", {}).get("tests", {})
    return {f"{name}.py": source for name, source in sorted(tests.items())}
