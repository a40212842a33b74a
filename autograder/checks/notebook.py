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
