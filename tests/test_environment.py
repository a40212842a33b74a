"""The pins students (conda or pip), TAs and CI install are the same."""
import re

from autograder.assignments import ROOT


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


def python_from(environment_text):
    match = re.search(r"^\s+- python=(\d+\.\d+)", environment_text, re.M)
    return match and match.group(1)


def test_autograder_zips_use_the_same_python_and_pins():
    """Gradescope builds its image from the zip's environment.yml: same Python, same pins."""
    import zipfile
    python = python_from((ROOT / "environment.yml").read_text())
    assert python == "3.11"
    zips = sorted((ROOT / "autograder" / "zips").glob("*.zip"))
    assert zips
    for path in zips:
        text = zipfile.ZipFile(path).read("environment.yml").decode()
        assert python_from(text) == python, f"{path.name} builds Python {python_from(text)}"
        shipped = {m.group(1).lower(): m.group(2) for m in re.finditer(r"- ([A-Za-z0-9_.-]+)==([^\s#]+)", text)}
        for name, pinned in pins_from_requirements().items():
            assert shipped.get(name) == pinned, f"{path.name}: {name} {shipped.get(name)} != {pinned}"
