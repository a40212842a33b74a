"""Export each master notebook to an nbgrader *source* assignment.

    python -m autograder build --nbgrader     # writes build/nbgrader/source/<id>/

One source, two graders: the same master notebook (`solutions/<id>.ipynb`) and the same otter
tests (read from `autograder/zips/<id>.zip`, so points and hidden flags are the ones the course
grader uses) become an nbgrader source notebook:

- graded code (`# BEGIN SOLUTION` / `# END SOLUTION` inside a cell, or a line ending in
  `# SOLUTION`) becomes an nbgrader solution cell with `### BEGIN SOLUTION` / `### END SOLUTION`;
- every otter test case becomes one locked "autograder tests" cell worth the case's points: the
  test function's source, then a call with the notebook's globals (as otter calls it: a missing
  name is passed as None, a parameter called `env` gets the globals);
- a hidden test case sits between `### BEGIN HIDDEN TESTS` / `### END HIDDEN TESTS`, so nbgrader
  strips it from the released notebook and puts it back when autograding;
- a written question (`manual: true`) becomes one manually graded markdown answer cell with the
  question's points, holding the model answer (nbgrader shows students `YOUR ANSWER HERE`).

Support files: the public part of the zip's `files/` (the `autograder` package without
`hidden/` and `references/`) is copied next to the notebook, so the notebook's setup cell finds
`autograder.checks` in the release, in the autograded folder and in the source folder. The
private modules (`autograder.hidden`, `autograder.references`) are never written as files,
because nbgrader copies every file of the source folder into the release that students get.
Instead each hidden test cell carries, inside its hidden region, the private modules it imports
(compressed) and serves them to `import` from memory; nbgrader removes that region from the
release and restores it when autograding.

As with otter, nbgrader runs the tests in the student's kernel: fine for feedback and trusted
grading, not protected against a student who tampers with the kernel. The course grader
(`python -m autograder grade`) is the protected path.

The export is deterministic: fixed cell ids, sorted JSON keys, fixed compression.
"""
import ast
import base64
import json
import posixpath
import shutil
import zipfile
import zlib
from pathlib import Path

import nbformat
from otter.assign.blocks import (
    BlockType,
    extract_all_fenced_otter_cells,
    get_cell_config,
    is_assignment_config_cell,
    is_block_boundary_cell,
)
from otter.assign.solutions import remove_ignored_lines
from otter.assign.utils import is_ignore_cell

from . import assignments
from .assignments import ROOT
from .module_imports import import_closure, imported_names
from .testfiles import load_questions_from_sources, read_test_sources

DEFAULT_OUT = ROOT / "build" / "nbgrader"
PRIVATE_PACKAGES = ("autograder/hidden/", "autograder/references/")
OTTER_ANSWER_PLACEHOLDER = "_Type your answer here, replacing this text._"
SCHEMA_VERSION = 3


class ExportError(ValueError):
    """The master notebook uses something the nbgrader export cannot express."""


# ---------------------------------------------------------------------------------------------
# reading the otter side


def read_zip(zip_path: Path):
    """(test sources {q1.py: text}, support files {relative path: bytes}) from an autograder zip."""
    with zipfile.ZipFile(zip_path) as archive:
        files = {n[len("files/"):]: archive.read(n) for n in sorted(archive.namelist())
                 if n.startswith("files/") and not n.endswith("/") and "__pycache__" not in n}
    return read_test_sources(zip_path), files


def test_function_sources(test_sources: dict) -> dict:
    """{(question, function name): source of the function without its decorator}."""
    found = {}
    for filename, text in test_sources.items():
        tree = ast.parse(text)
        question = posixpath.splitext(filename)[0]
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "name"
                    and isinstance(node.value, ast.Constant)):
                question = node.value.value
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.decorator_list:
                found[(question, node.name)] = ast.get_source_segment(text, node)
    return found


def split_support_files(files: dict):
    """(public files to ship next to the notebook, private Python modules {dotted name: source})."""
    public, private = {}, {}
    for path, data in files.items():
        if path.startswith(PRIVATE_PACKAGES):
            if not path.endswith(".py"):
                raise ExportError(f"private support file {path} is not a Python module; the nbgrader "
                                  "export can only carry private modules inside hidden test cells")
            private[_module_name(path)] = (path.endswith("/__init__.py"), data.decode())
        else:
            public[path] = data
    for path, data in public.items():
        if path.endswith(".py") and imported_names(data.decode(), _module_name(path)) & set(private):
            raise ExportError(f"public support module {path} imports a private module "
                              "(autograder.hidden or autograder.references)")
    return public, private


def _module_name(path: str) -> str:
    module = path[:-3].replace("/", ".")
    return module[: -len(".__init__")] if module.endswith(".__init__") else module


# ---------------------------------------------------------------------------------------------
# writing the nbgrader cells

PRIVATE_LOADER = '''\
import importlib.abc, importlib.util, linecache, sys

class SeqmodPrivateModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the course's private checks to `import` from memory (nbgrader hidden tests)."""
    seqmod_private = True

    def find_spec(self, name, path=None, target=None):
        if name in SOURCES:
            return importlib.util.spec_from_loader(name, self, is_package=SOURCES[name][0])
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        filename = "<private %s>" % module.__name__
        source = SOURCES[module.__name__][1]
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), module.__dict__)

# Always these sources, never a module already imported or found on disk under the same name.
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "seqmod_private", False)]
for name in SOURCES:
    sys.modules.pop(name, None)
sys.meta_path.insert(0, SeqmodPrivateModules())
'''


def private_loader_lines(modules: dict) -> list:
    """Lines that make `modules` importable in the kernel; the payload is compressed source on
    one line, so that the test stays readable in Jupyter and in nbgrader's formgrader."""
    program = "SOURCES = " + repr({name: list(value) for name, value in modules.items()}) + "\n" + PRIVATE_LOADER
    payload = base64.b64encode(zlib.compress(program.encode(), 9)).decode()
    return ["# The private modules this test imports (" + ", ".join(modules) + "), compressed:",
            f'exec(__import__("zlib").decompress(__import__("base64").b64decode("{payload}")).decode(), '
            '{"__name__": "seqmod_private_loader"})']


def call_line(function: str, params: list) -> str:
    """Call a test function as otter does: names from the notebook's globals, None when missing."""
    args = ", ".join(f"{p}=globals()" if p == "env" else f"{p}=globals().get({p!r})" for p in params)
    return f"{function}({args})"


def _points_text(points: float) -> str:
    value = f"{points:g}"
    return f"{value} point" + ("" if points == 1 else "s")


def case_grade_id(question: str, case_name: str) -> str:
    """The nbgrader cell id of one otter test case."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{question}_{case_name}")


def test_cell(question: str, case, function_source: str, private: dict):
    """The locked nbgrader cell of one otter test case: its function and the call; a hidden case
    sits in a hidden-tests region with the private modules it imports."""
    header = f"# {question}, {case.name}: {_points_text(case.points)}"
    call = call_line(case.func.__name__, case.params)
    if case.hidden:
        modules = import_closure(function_source, private)  # the private modules it needs
        lines = [header + ", hidden: it runs when the notebook is graded.",
                 "### BEGIN HIDDEN TESTS",
                 function_source, "", "",
                 *(private_loader_lines(modules) if modules else []),
                 call,
                 "### END HIDDEN TESTS"]
    else:
        lines = [header, function_source, "", "", call]
    return _nbgrader_cell(nbformat.v4.new_code_cell("\n".join(lines)), grade_id=case_grade_id(question, case.name),
                          grade=True, solution=False, locked=True, points=case.points)


def _nbgrader_cell(cell, grade_id, grade, solution, locked, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    cell.metadata = {"nbgrader": meta}
    return cell


def convert_solution_markers(source: str):
    """Otter's solution markers as nbgrader's; returns (source, whether it has a solution region).

    `# BEGIN SOLUTION` / `# END SOLUTION` lines become `### BEGIN SOLUTION` / `### END SOLUTION`;
    a run of lines ending in `# SOLUTION` is wrapped in one such region (marker removed).
    """
    out, found, in_block, run_indent = [], False, False, None
    for line in source.split("\n"):
        stripped = line.strip()
        tail = line.rstrip()
        if any(tail.endswith(s) for s in ("# SOLUTION NO PROMPT", "# BEGIN PROMPT", "# END PROMPT", "# SEED")) \
                or stripped.startswith("# BEGIN SOLUTION NO PROMPT"):
            raise ExportError(f"otter marker not supported by the nbgrader export: {stripped!r}")
        is_begin, is_end = stripped == "# BEGIN SOLUTION", stripped == "# END SOLUTION"
        is_line_solution = (not in_block and not is_begin and not is_end
                            and tail.endswith("# SOLUTION") and stripped != "# SOLUTION")
        if run_indent is not None and not is_line_solution:
            out.append(run_indent + "### END SOLUTION")
            run_indent = None
        if is_begin:
            if in_block:
                raise ExportError("nested # BEGIN SOLUTION")
            in_block, found = True, True
            out.append(line[: len(line) - len(line.lstrip())] + "### BEGIN SOLUTION")
        elif is_end:
            if not in_block:
                raise ExportError("# END SOLUTION without # BEGIN SOLUTION")
            in_block = False
            out.append(line[: len(line) - len(line.lstrip())] + "### END SOLUTION")
        elif is_line_solution:
            found = True
            if run_indent is None:
                run_indent = line[: len(line) - len(line.lstrip())]
                out.append(run_indent + "### BEGIN SOLUTION")
            out.append(tail[: -len("# SOLUTION")].rstrip())
        else:
            out.append(line)
    if run_indent is not None:
        out.append(run_indent + "### END SOLUTION")
    if in_block:
        raise ExportError("# BEGIN SOLUTION without # END SOLUTION")
    return "\n".join(out), found


# ---------------------------------------------------------------------------------------------
# the notebook


def rubric_markdown(question) -> list:
    """The question's rubric under its model answer, for the formgrader (nbgrader replaces the
    whole answer cell for students, so it never reaches them)."""
    items = question.get("rubric") or []
    if not items:
        return []
    return ["**Rubric**\n\n" + "\n".join(f"- ({float(i.get('points', 0)):g} pt) {i.get('item', '')}" for i in items)]


def source_notebook(master, test_sources: dict, private: dict):
    """The nbgrader source notebook for one master notebook and its otter tests."""
    questions = {q.name: q for q in load_questions_from_sources(test_sources)}
    functions = test_function_sources(test_sources)
    cells = []
    question = None          # QuestionConfig dict of the open question
    blocks = []              # open blocks, innermost last
    solution_ids = {}        # question -> solution cells so far
    answers = []             # model-answer markdown of the open manual question's solution block
    answer_at = None         # index in `cells` where its answer cell goes
    tests_written = set()

    def solution_cell(cell):
        source, has_region = convert_solution_markers(cell.source)
        cell = nbformat.v4.new_code_cell(source)
        if not has_region:
            return cell
        name = question["name"] if question else "cell"
        solution_ids[name] = solution_ids.get(name, 0) + 1
        return _nbgrader_cell(cell, grade_id=f"{name}_solution_{solution_ids[name]}",
                              grade=False, solution=True, locked=False)

    for cell in extract_all_fenced_otter_cells(master.cells):
        if is_ignore_cell(cell) or is_assignment_config_cell(cell):
            continue
        cell = nbformat.from_dict({"cell_type": cell.cell_type, "metadata": {},
                                   "source": "\n".join(remove_ignored_lines(cell.source.split("\n")))})
        ended = [b for b in BlockType if is_block_boundary_cell(cell, b, end=True)]
        begun = [b for b in BlockType if is_block_boundary_cell(cell, b)]
        if ended:
            if not blocks or blocks[-1] is not ended[0]:
                raise ExportError(f"unexpected end of a {ended[0].value} block")
            blocks.pop()
            if ended[0] is BlockType.SOLUTION and question.get("manual"):
                points = question.get("points")
                if not isinstance(points, (int, float)) or isinstance(points, bool):
                    raise ExportError(f"written question {question['name']} needs a number of points")
                if answers:
                    answer = nbformat.v4.new_markdown_cell("\n\n".join(answers + rubric_markdown(question)))
                    cells.insert(answer_at, _nbgrader_cell(answer, grade_id=f"{question['name']}_answer",
                                                           grade=True, solution=True, locked=False,
                                                           points=float(points)))
                else:  # a manually graded code answer: the block's first solution cell carries the points
                    code = [c for c in cells[answer_at:] if c.metadata.get("nbgrader", {}).get("solution")]
                    if not code:
                        raise ExportError(f"written question {question['name']} has no model answer")
                    code[0].metadata["nbgrader"].update(grade=True, points=float(points))
                answers, answer_at = [], None
            if ended[0] is BlockType.QUESTION:
                question = None
            continue
        if begun:
            block = begun[0]
            if block is BlockType.QUESTION:
                question = dict(get_cell_config(cell) or {})
                if "name" not in question:
                    raise ExportError("a question has no name")
            elif block is BlockType.SOLUTION:
                answer_at = len(cells)
            elif block is BlockType.TESTS:
                name = question["name"]
                if name in questions:
                    for case in questions[name].cases:
                        source = functions[(name, case.func.__name__)]
                        cells.append(test_cell(name, case, source, private))
                    tests_written.add(name)
            blocks.append(block)
            continue
        inside = blocks[-1] if blocks else None
        if inside is BlockType.TESTS:
            continue  # replaced by the cells made from the zip's test files
        if inside is BlockType.PROMPT:
            continue  # nbgrader makes the student's prompt from the solution cell
        if cell.cell_type == "raw":
            cells.append(nbformat.v4.new_raw_cell(cell.source))
        elif cell.cell_type == "markdown":
            if inside is BlockType.SOLUTION:
                if question.get("manual"):
                    answers.append(cell.source)
                # a markdown solution of an autograded question: otter drops it for students,
                # and nbgrader has no ungraded hidden markdown, so it is left out
                continue
            if question and question.get("manual") and cell.source.strip() == OTTER_ANSWER_PLACEHOLDER:
                continue  # the nbgrader answer cell takes its place
            cells.append(nbformat.v4.new_markdown_cell(cell.source))
        else:
            cells.append(solution_cell(cell))
    if blocks:
        raise ExportError(f"unclosed {blocks[-1].value} block")
    missing = set(questions) - tests_written
    if missing:
        raise ExportError(f"tests in the zip for questions with no tests block: {sorted(missing)}")
    _check_delimiters(cells)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"
    return nb


def _check_delimiters(cells):
    """nbgrader rejects solution or hidden-test delimiters outside solution or grade cells."""
    for cell in cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution") and "BEGIN SOLUTION" in cell.source:
            raise ExportError(f"'BEGIN SOLUTION' appears outside a solution cell: {cell.source[:200]!r}")
        if not meta.get("grade") and "BEGIN HIDDEN TESTS" in cell.source:
            raise ExportError(f"'BEGIN HIDDEN TESTS' appears outside a test cell: {cell.source[:200]!r}")


def notebook_text(nb) -> str:
    """The notebook as deterministic JSON text (sorted keys)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def export_one(spec) -> dict:
    """{relative path inside source/<id>/: bytes} for one assignment."""
    if not spec.zip_path.exists():
        raise ExportError(f"{spec.zip_path} is missing: run `python -m autograder build` first")
    test_sources, files = read_zip(spec.zip_path)
    public, private = split_support_files(files)
    master = nbformat.read(spec.master, as_version=4)
    outputs = {f"{spec.id}.ipynb": notebook_text(source_notebook(master, test_sources, private)).encode()}
    outputs.update(public)
    return outputs


def export(ids=None, out: Path = DEFAULT_OUT) -> list:
    """Write `out/source/<id>/` for each assignment (all available ones by default); return the
    folders written. Each folder is replaced as a whole; the rest of `out` is left alone."""
    written = []
    for spec in assignments.available():
        if ids is not None and spec.id not in ids:
            continue
        outputs = export_one(spec)
        folder = Path(out) / "source" / spec.id
        if folder.exists():
            shutil.rmtree(folder)
        for relative, data in sorted(outputs.items()):
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        written.append(folder)
    return written
