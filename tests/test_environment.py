"""The pins students (conda or pip), TAs and CI install are the same."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pins_from_requirements():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def pins_from_environment():
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        match = re.match(r"\s+- ([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_environment_yml_matches_requirements():
    assert pins_from_requirements() == pins_from_environment()


def test_required_pins():
    pins = pins_from_requirements()
    assert pins["torch"] == "2.13.0"
    assert pins["otter-grader"] == "7.0.0"
    assert pins["nbgrader"] == "0.9.6"


def test_every_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.+]*", line), line


def test_installed_versions_match_the_pins():
    from importlib.metadata import version
    for name, pinned in pins_from_requirements().items():
        assert version(name).split("+")[0] == pinned, f"{name}: installed {version(name)}, pinned {pinned}"
