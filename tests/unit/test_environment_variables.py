"""Every environment variable the code reads is documented in docs/ENVIRONMENT.md."""
import re

from autograder.assignments import ROOT

# The project's own variables: SEQMOD_*, DEMO_FULL, and the test suite's FULL.
PATTERN = re.compile(r"\b(?:SEQMOD_[A-Z0-9_]*[A-Z0-9]|DEMO_FULL)\b|(?<=environ\.get\(\")FULL(?=\")")
SOURCES = ["autograder", "tests", "tools", "benchmarks"]


def documented() -> set:
    text = (ROOT / "docs" / "ENVIRONMENT.md").read_text()
    rows = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z0-9_]+)`", row)}


def used() -> dict:
    """{variable: first file that names it} over the Python sources, the Makefile and .ci/run."""
    files = [p for folder in SOURCES for p in (ROOT / folder).rglob("*.py")]
    files += [ROOT / "Makefile", ROOT / ".ci" / "run"]
    found = {}
    for path in files:
        for name in PATTERN.findall(path.read_text(errors="replace")):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_every_variable_in_use_is_documented():
    missing = {name: where for name, where in used().items() if name not in documented()}
    assert not missing, f"add these to docs/ENVIRONMENT.md: {missing}"


def test_every_documented_variable_is_in_use():
    assert documented() - set(used()) == set()
