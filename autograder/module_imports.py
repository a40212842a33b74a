"""Which modules a piece of Python source needs: its imports, followed through the modules they name.

The build uses it to ship the package modules a notebook's tests import; the nbgrader export uses
it to carry the private modules a hidden test imports inside that test's cell.
"""
import ast


def imported_names(source: str, module: str = "", is_package: bool = False) -> set:
    """Every dotted name `source` may import: each prefix of an import's target, and
    `target.attribute` for `from target import attribute`. Relative imports are resolved as if
    `source` were the module `module` (a package's `__init__` when `is_package`)."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found |= _prefixes(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found |= _prefixes(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def notebook_imports(sources) -> list:
    """The modules that the code cells `sources` import by absolute name, in order of first
    appearance (lines of IPython syntax, `%` and `!`, are left out; a cell that still does not
    parse is skipped)."""
    found = []
    for source in sources:
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            found.extend(name for name in names if name not in found)
    return found


def _prefixes(dotted: str) -> set:
    parts = dotted.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def import_closure(source: str, modules: dict) -> dict:
    """The entries of `modules` ({dotted name: (is_package, source)}) that `source` imports,
    directly or through other entries (a module's parent package counts as imported with it)."""
    pending = imported_names(source) & set(modules)
    needed = set()
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed.add(name)
        parent = name.rpartition(".")[0]
        if parent in modules:
            pending.add(parent)
        is_package, module_source = modules[name]
        pending |= imported_names(module_source, name, is_package) & set(modules)
    return {name: modules[name] for name in sorted(needed)}
