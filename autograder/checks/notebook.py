"""Helpers the notebooks themselves use (not checks)."""
import os


def grading_mode() -> bool:
    """True while a grader runs the notebook: the course grader sets SEQMOD_GRADING=1, nbgrader
    sets NBGRADER_EXECUTION=autograde, and otter (Gradescope, `otter run`) marks its runs with
    `otter.Notebook._grading_mode`.
    Notebooks shrink slow, ungraded parts (timing sweeps, large demos) when it is true."""
    if os.environ.get("SEQMOD_GRADING") == "1" or os.environ.get("NBGRADER_EXECUTION") == "autograde":
        return True
    try:
        import otter
    except ImportError:
        return False
    return bool(getattr(getattr(otter, "Notebook", None), "_grading_mode", False))


def course_root():
    """The folder that holds `autograder/` (the repository, or a downloaded bundle)."""
    from pathlib import Path
    return Path(__file__).resolve().parent.parent.parent


def public_tests_dir(assignment: str) -> str:
    """Where the public test files for `grader.check` live, next to the checks library."""
    return str(course_root() / "notebooks" / "tests" / assignment)


def missing_requirements(requirements_text: str, installed=None) -> list:
    """Pinned requirements whose package is not installed at all.

    A package that is installed at another version is left alone: a Colab runtime ships its own
    torch, and replacing it would download gigabytes for no benefit to these notebooks.
    """
    from importlib.metadata import PackageNotFoundError, version
    missing = []
    for line in requirements_text.splitlines():
        line = line.split("#")[0].strip()
        if not line or "==" not in line:
            continue
        name = line.split("==")[0].strip()
        if installed is not None:
            present = name.lower() in installed
        else:
            try:
                version(name)
                present = True
            except PackageNotFoundError:
                present = False
        if not present:
            missing.append(line)
    return missing


def install_missing_packages(requirements_path) -> list:
    """pip-install the pinned packages that are absent (e.g. otter-grader on Colab)."""
    import subprocess
    import sys
    from pathlib import Path
    path = Path(requirements_path)
    if grading_mode() or not path.exists():
        return []
    missing = missing_requirements(path.read_text())
    if missing:
        print("Installing missing packages:", ", ".join(missing))
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
    return missing


def is_stub(fn) -> bool:
    """True for a function whose body is only `...` or `pass` (and perhaps a docstring)."""
    import ast
    import inspect
    try:
        tree = ast.parse(inspect.getsource(fn).strip())
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # a docstring
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                             and s.value.value is Ellipsis) for s in body)


def _names_reached(tree, namespace: dict) -> set:
    """Global names a cell uses, directly or through the functions it calls (followed transitively)."""
    import ast
    import types
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    pending, seen = list(names), set()
    while pending:
        value = namespace.get(pending.pop())
        if not isinstance(value, types.FunctionType) or id(value) in seen:
            continue
        seen.add(id(value))
        codes = [value.__code__]
        while codes:
            code = codes.pop()
            new = set(code.co_names) - names
            names |= new
            pending.extend(new)
            codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names


class StubGuard:
    """Makes a cell that needs an unfinished graded function say so instead of failing.

    Installed as an IPython AST transformer: a cell that reaches (directly or through the
    functions it calls) a graded function that is still a stub runs inside `try`; if it raises,
    the traceback (often from deep inside matplotlib or torch) is replaced by one line naming the
    function and its question, the cell's half-drawn figures are closed, and Run All moves on.
    An error in a cell whose graded functions are all implemented is shown as usual.
    """

    def __init__(self, questions: dict, shell):
        self.questions = questions  # graded function name -> question name, e.g. "q1"
        self.shell = shell
        self.figures_before = set()

    def stubs(self, names) -> list:
        """Those of `names` that are graded functions and still stubs in the kernel."""
        namespace = self.shell.user_ns
        return [name for name in self.questions
                if name in names and callable(namespace.get(name)) and is_stub(namespace[name])]

    def visit(self, tree):
        """IPython calls this on each cell's syntax tree before running it."""
        try:
            return self._guarded(tree)
        except Exception:  # noqa: BLE001 - never stand between a student and their cell
            return tree

    def _guarded(self, tree):
        import ast
        defined_here = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        reached = _names_reached(tree, self.shell.user_ns) - defined_here
        if not tree.body or not self.stubs(reached):
            return tree
        self.figures_before = set(_open_figures())
        graded = sorted(reached & set(self.questions))
        guarded = ast.parse(
            "try:\n    pass\n"
            "except Exception as _seqmod_error:\n"
            f"    if not __seqmod_stub_guard__.explain(_seqmod_error, {graded!r}):\n"
            "        raise\n"
            "else:\n"
            f"    __seqmod_stub_guard__.remind({graded!r})\n").body[0]
        guarded.body = tree.body
        tree.body = [guarded]
        return ast.fix_missing_locations(tree)

    def explain(self, error, names) -> bool:
        """Print what to implement first when a stub caused `error`; False when none did."""
        stubs = self.stubs(names)
        if not stubs:
            return False
        print(f"{self._implement_first(stubs)}: this cell uses {self._them(stubs)}, so the rest of it was "
              f"skipped ({type(error).__name__}).")
        _close_figures(set(_open_figures()) - self.figures_before)
        return True

    def remind(self, names):
        """The cell ran although it used a stub: say that its output means nothing yet."""
        stubs = self.stubs(names)
        if stubs:
            print(f"{self._implement_first(stubs)}: this cell uses {self._them(stubs)}, so what it shows "
                  "means nothing yet.")

    def _implement_first(self, stubs) -> str:
        return f"Implement `{stubs[0]}` first ({question_label(self.questions[stubs[0]])})"

    @staticmethod
    def _them(stubs) -> str:
        """The stubs are in question order: the first one is the one to do next."""
        if len(stubs) == 1:
            return "it and it is still a stub"
        others = ", ".join(f"`{name}`" for name in stubs[1:])
        return f"it and {len(stubs) - 1} more unfinished function{'s' * (len(stubs) > 2)} ({others})"


def question_label(question: str) -> str:
    """ "q1" -> "question 1" """
    return f"question {question[1:]}" if question[:1] == "q" and question[1:2].isdigit() else question


def _open_figures() -> list:
    import sys
    pyplot = sys.modules.get("matplotlib.pyplot")
    return pyplot.get_fignums() if pyplot is not None else []


def _close_figures(numbers):
    import sys
    pyplot = sys.modules.get("matplotlib.pyplot")
    for number in numbers:
        pyplot.close(number)


def guard_stubs(questions: dict, shell=None):
    """Install StubGuard in this IPython session (not while grading: graders see real errors)."""
    if grading_mode():
        return None
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return None
        shell = get_ipython()
    if shell is None:
        return None
    guard = StubGuard(questions, shell)
    shell.ast_transformers[:] = [t for t in shell.ast_transformers if type(t).__name__ != "StubGuard"]
    shell.ast_transformers.append(guard)
    shell.user_ns["__seqmod_stub_guard__"] = guard
    return guard
