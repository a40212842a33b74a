"""Regenerate `notebooks/` and the autograder zips from the master notebooks in `solutions/`.

Deterministic: cell ids are renumbered, outputs cleared, zip entries sorted with a fixed
timestamp, so building twice gives byte-identical files and a stale committed copy shows up.
"""
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from . import assignments, settings
from .assignments import ROOT
from .files import atomic_write
from .module_imports import import_closure
from .questions import BEGIN_QUESTION, QuestionError, normalize_fact, questions, strip_course_keys
from .student_cells import public_test_files, rewrite
from .testfiles import load_questions

FIXED_TIME = (2020, 1, 1, 0, 0, 0)
SHIPPED_PACKAGES = ("checks", "hidden", "references")


def normalize_notebook(nb) -> str:
    """The notebook as deterministic JSON text: numbered cell ids, no outputs, only the
    cell metadata students need, a fixed kernelspec."""
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in ("tags", "deletable", "editable")}
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        **({"otter": nb.metadata["otter"]} if "otter" in nb.metadata else {}),
    }
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def shipped_modules() -> dict:
    """{dotted name: (is_package, source)} for every module a build may ship with the tests."""
    return {f"autograder.{package}.{path.stem}": (False, path.read_text())
            for package in SHIPPED_PACKAGES
            for path in sorted((ROOT / "autograder" / package).glob("*.py")) if path.stem != "__init__"}


def support_modules(master) -> list:
    """Every package module the master's tests need, following imports transitively."""
    code = "\n".join(c.source for c in master.cells if c.cell_type == "code")
    return list(import_closure(code, shipped_modules()))


def rubric_problems(master_questions) -> list:
    """A written question whose rubric is missing or does not add up to its points."""
    problems = []
    for question in master_questions:
        if not question.manual:
            continue
        total = sum(item.points for item in question.rubric)
        if not question.rubric:
            problems.append(f"written question {question.name} has no rubric")
        elif question.points is None or abs(total - question.points) > 1e-9:
            problems.append(f"written question {question.name}: its rubric adds up to {total:g} points, "
                            f"but the question is worth {question.points}")
    return problems


def unstated_key_fact_problems(master) -> list:
    """A key fact that the question itself (its model answer or solution) never states: a typo, or a
    fact the check would look for in vain."""
    problems = []
    for question in questions(master):
        inside = normalize_fact("\n".join(c.source for c in master.cells[question.first_cell + 1:question.last_cell]
                                           if c.cell_type != "raw"))
        problems += [f"question {question.name}: key fact {fact!r} is not stated in its model answer or solution"
                     for fact in question.key_facts if normalize_fact(fact) not in inside]
    return problems


def ask_before_tell_problems(student, master, notebook_name: str) -> list:
    """Key facts of a question that the student notebook states before the question is asked.

    Student-visible text is every markdown and code cell of the generated student notebook; a
    question starts at the student cell that contains its first prompt cell. Matching uses
    `normalize_fact` on both sides."""
    problems = []
    visible = [(i, normalize_fact(c.source), c.source.strip().split("\n", 1)[0][:60])
               for i, c in enumerate(student.cells) if c.cell_type in ("markdown", "code")]
    for question in questions(master):
        if not question.key_facts:
            continue
        prompt_cell = master.cells[question.first_cell + 1]
        start = next((i for i, c in enumerate(student.cells)  # otter wraps prompts in <!-- --> markers
                      if prompt_cell.cell_type == "markdown" and prompt_cell.source.strip() in c.source), None)
        if start is None:
            problems.append(f"{notebook_name}: question {question.name} has key facts but no markdown prompt "
                            f"right after its `# BEGIN QUESTION` cell that the student notebook shows")
            continue
        for fact in question.key_facts:
            wanted = normalize_fact(fact)
            for index, text, opening in visible:
                if index >= start:
                    break
                if wanted in text:
                    problems.append(f"{notebook_name}: key fact {fact!r} of question {question.name} is "
                                    f"told before the question is asked, in student cell {index} ({opening!r})")
    return problems


def student_master(master):
    """The master as otter should see it: course-only question keys (rubric, key_facts) removed."""
    copy = nbformat.from_dict(json.loads(json.dumps(master)))
    for cell in copy.cells:
        if cell.cell_type == "raw" and cell.source.strip().startswith(BEGIN_QUESTION):
            cell.source = strip_course_keys(cell.source)
    return copy


def _stage(spec, staging: Path):
    """A folder holding the master notebook and the package modules its tests import."""
    nbformat.write(student_master(nbformat.read(spec.master, as_version=4)), staging / spec.master.name)
    shutil.copy(ROOT / "requirements.txt", staging / "requirements.txt")
    package = staging / "autograder"
    package.mkdir()
    (package / "__init__.py").write_text('"""Course autograder: the parts the tests need."""\n')
    for module in support_modules(nbformat.read(spec.master, as_version=4)):
        source = (ROOT / module.replace(".", "/")).with_suffix(".py")
        target = staging / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        init = source.parent / "__init__.py"
        shutil.copy(init, target.parent / "__init__.py")
    (package / "checks" / "gpu_policy.txt").write_text(settings.gpu_policy() + "\n")


def deterministic_zip(source: Path) -> bytes:
    """The zip at `source` rewritten with sorted entries, a fixed timestamp and fixed modes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for name in sorted(n for n in original.namelist() if not n.endswith("/") and "__pycache__" not in n):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if name == "run_autograder" else 0o644) << 16
            out.writestr(info, original.read(name))
    return buffer.getvalue()


def build_one(spec) -> dict:
    """{path: bytes} of every generated file of one assignment (student notebook, zip, public
    tests); exits naming the problems when the master is inconsistent."""
    master = nbformat.read(spec.master, as_version=4)
    try:
        problems = rubric_problems(questions(master)) + unstated_key_fact_problems(master)
    except QuestionError as error:
        problems = [str(error)]
    if problems:
        raise SystemExit("\n".join(f"{spec.master.name}: {problem}" for problem in problems))
    with tempfile.TemporaryDirectory(prefix=f"build-{spec.id}-") as tmp:
        tmp = Path(tmp)
        staging = tmp / "src"
        staging.mkdir()
        _stage(spec, staging)
        result = subprocess.run(
            [sys.executable, "-m", "otter", "assign", "--no-run-tests", "--no-pdfs",
             str(staging / spec.master.name), str(tmp / "out")],
            capture_output=True, text=True, cwd=staging)
        if result.returncode != 0:
            raise SystemExit(f"otter assign failed for {spec.id}:\n{result.stdout}\n{result.stderr}")
        student = nbformat.read(tmp / "out" / "student" / spec.master.name, as_version=4)
        zips = list((tmp / "out" / "autograder").glob("*.zip"))
        if len(zips) != 1:
            raise SystemExit(f"otter assign made {len(zips)} zips for {spec.id}")
        zip_bytes = deterministic_zip(zips[0])
        graded = {p for q in load_questions(io.BytesIO(zip_bytes)) for c in q.cases for p in c.params}
        rewrite(student, spec.id, sorted(graded))
        problems = ask_before_tell_problems(student, master, spec.student.name)
        if problems:
            raise SystemExit("ask before you tell:\n" + "\n".join(problems))
        outputs = {spec.student: normalize_notebook(student).encode(), spec.zip_path: zip_bytes}
        for name, text in public_test_files(student).items():
            outputs[public_tests_folder(spec.id) / name] = text.encode()
        return outputs


def public_tests_folder(assignment_id) -> Path:
    """Where an assignment's public test files go: `notebooks/tests/<id>/`."""
    return ROOT / "notebooks" / "tests" / assignment_id


PUBLIC_BUNDLE = ROOT / "notebooks" / "course_public.zip"


def public_bundle(outputs: dict) -> bytes:
    """What a notebook opened on its own downloads: the checks library, public tests, pins."""
    files = {"autograder/__init__.py": b'"""Public part of the course autograder."""\n',
             "requirements.txt": (ROOT / "requirements.txt").read_bytes()}
    for path in sorted((ROOT / "autograder" / "checks").glob("*.py")):
        files[f"autograder/checks/{path.name}"] = path.read_bytes()
    tests_root = ROOT / "notebooks" / "tests"
    on_disk = {p: p.read_bytes() for p in tests_root.rglob("*.py")} if tests_root.exists() else {}
    for path, data in {**on_disk, **{p: d for p, d in outputs.items() if tests_root in p.parents}}.items():
        files[str(path.relative_to(ROOT))] = data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()


def _tests_in_zip(data: bytes) -> dict:
    """(question, test) -> (points, hidden, source) for every test case in an autograder zip."""
    def fingerprint(code):  # compiled body and constants: changes when the test's code does
        consts = tuple(fingerprint(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts)
        return (code.co_code, consts, code.co_names)

    found = {}
    for question in load_questions(io.BytesIO(data)):
        for case in question.cases:
            found[(question.name, case.name)] = (case.points, case.hidden, fingerprint(case.func.__code__))
    return found


def describe_changes(path: Path, old: bytes, new: bytes) -> list:
    """Lines for the instructor: what a regenerated file changes, to review a release."""
    name = str(path.relative_to(ROOT))
    if path.suffix != ".zip" or old is None:
        return [f"{'new' if old is None else 'changed'}: {name}"]
    before, after = _tests_in_zip(old), _tests_in_zip(new)
    lines = [f"changed: {name}"]
    for key in sorted(set(before) | set(after)):
        label = f"{key[0]}/{key[1]}"
        if key not in before:
            lines.append(f"    + test {label} ({after[key][0]:g} pt, {'hidden' if after[key][1] else 'public'})")
        elif key not in after:
            lines.append(f"    - test {label} removed")
        elif before[key] != after[key]:
            what = [w for w, i in (("points", 0), ("visibility", 1), ("code", 2)) if before[key][i] != after[key][i]]
            lines.append(f"    ~ test {label}: {', '.join(what)} changed")
    def totals(tests):
        return {q: sum(p for (qq, _), (p, _, _) in tests.items() if qq == q) for q, _ in tests}

    old_totals, new_totals = totals(before), totals(after)
    for q in sorted(set(old_totals) | set(new_totals)):
        if old_totals.get(q) != new_totals.get(q):
            lines.append(f"    points {q}: {old_totals.get(q, 0):g} -> {new_totals.get(q, 0):g}")
    if len(lines) == 1:
        lines.append("    (tests and points unchanged; support files differ)")
    return lines


def build(ids=None, check_only=False) -> list:
    """Build every assignment; return the generated files that changed (or would change)."""
    specs = [s for s in assignments.available() if ids is None or s.id in ids]
    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = {}
        for produced in pool.map(build_one, specs):
            outputs.update(produced)
    outputs[PUBLIC_BUNDLE] = public_bundle(outputs)
    changed = []
    for path, data in sorted(outputs.items()):
        old = path.read_bytes() if path.exists() else None
        if old != data:
            changed.append(path)
            for line in describe_changes(path, old, data):
                print(line)
            if not check_only:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, data)
    return changed
