"""Read an untrusted notebook file down to what the grader needs, in a limited child process.

A submission's bytes can be made costly to read: full schema validation (nbformat) of a notebook
with 200,000 odd outputs takes minutes, and a JSON file of millions of tiny containers takes
gigabytes. So the grader never parses a submission in a trusted process. `read_notebook` runs
this file as a fresh interpreter (`python -I -S`, standard library only) under the submission's
own deadline and memory cap; it keeps only the cells' types and sources and the kernelspec, and
writes that minimal notebook (format 4.4, no outputs, no attachments) for the sandbox to run.

The written answers a TA reads are taken from the same limited child (`answers_notebook`): it
keeps, besides, each cell's id, a markdown cell's attachments and a code cell's first outputs.

Child protocol: the notebook's bytes on stdin (argument `--answers` for the written answers'
form); on stdout either "ok\\n" and the minimal notebook as JSON, or "problem\\n" and a status
for the TA.
"""
import json
import sys

CELL_TYPES = ("code", "markdown", "raw")
KERNELSPEC_KEYS = ("name", "display_name", "language")
TOO_COSTLY = "the file is too large or too complex to read within the memory limit"
SHOWN_OUTPUTS = 20  # of a code cell, in the written answers' form (what the TA's pages show)
MAX_ID_CHARS = 64


class NotANotebook(ValueError):
    """The file cannot be graded as a notebook; the message says why, for the TA."""


def _source(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return ""


def minimal_notebook(raw: bytes, answers: bool = False) -> dict:
    """The cells (type and source) and kernelspec of a notebook file of format 3 or 4.

    Only the shape the grader relies on is checked: a JSON object with a list of cells, at least
    one of them a code cell. Odd cells are left out, as odd fields are; outputs are dropped (a
    submission is run afresh, never judged by what it shows). With `answers`, the form the
    written answers are read from: each cell also keeps its id (a string), a markdown cell its
    attachments, and a code cell its first SHOWN_OUTPUTS outputs.
    """
    if not raw.strip():
        raise NotANotebook("the file is empty")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise NotANotebook("the file is not UTF-8 text") from None
    except RecursionError:
        raise NotANotebook("the file's JSON is nested too deeply") from None
    except ValueError as error:
        raise NotANotebook(f"the file is not JSON ({error})") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotANotebook("the file is JSON, but not a Jupyter notebook")
    version = data["nbformat"]
    if version == 4:
        cells = data.get("cells")
    elif version == 3:
        worksheets = data.get("worksheets")
        cells = [cell for sheet in worksheets if isinstance(sheet, dict)
                 for cell in (sheet.get("cells") if isinstance(sheet.get("cells"), list) else [])] \
            if isinstance(worksheets, list) else None
    else:
        raise NotANotebook(f"a notebook of format {str(version)[:20]}, which the grader does not read "
                           "(save it with a current Jupyter)")
    if not isinstance(cells, list):
        raise NotANotebook("the file is JSON, but not a Jupyter notebook (no list of cells)")
    kept = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in CELL_TYPES:
            continue
        kind = cell["cell_type"]
        source = _source(cell.get("input" if version == 3 and kind == "code" else "source"))
        entry = {"cell_type": kind, "metadata": {}, "source": source}
        if kind == "code":
            entry.update(outputs=[], execution_count=None)
        if answers:
            _keep_for_answers(cell, entry)
        kept.append(entry)
    if not any(cell["cell_type"] == "code" for cell in kept):
        raise NotANotebook("it has no code cells")
    metadata = data.get("metadata")
    kernelspec = metadata.get("kernelspec") if isinstance(metadata, dict) else None
    notebook_metadata = {}
    if isinstance(kernelspec, dict):
        notebook_metadata["kernelspec"] = {key: kernelspec[key] for key in KERNELSPEC_KEYS
                                           if isinstance(kernelspec.get(key), str)}
    return {"cells": kept, "metadata": notebook_metadata, "nbformat": 4, "nbformat_minor": 4}


def _keep_for_answers(cell: dict, entry: dict):
    if isinstance(cell.get("id"), str) and len(cell["id"]) <= MAX_ID_CHARS:
        entry["id"] = cell["id"]
    if entry["cell_type"] == "markdown" and isinstance(cell.get("attachments"), dict):
        entry["attachments"] = cell["attachments"]
    if entry["cell_type"] == "code" and isinstance(cell.get("outputs"), list):
        entry["outputs"] = [output for output in cell["outputs"][:SHOWN_OUTPUTS] if isinstance(output, dict)]


def main():
    """The child process: read a notebook from stdin, write `ok` and its minimal form, or `problem`
    and why, to stdout."""
    raw = sys.stdin.buffer.read()
    try:
        text = "ok\n" + json.dumps(minimal_notebook(raw, answers="--answers" in sys.argv[1:]))
    except NotANotebook as problem:
        text = f"problem\n{problem}"
    except MemoryError:
        text = "problem\n" + TOO_COSTLY
    sys.stdout.write(text)


# -- the trusted side -----------------------------------------------------------------------------
def _read_in_child(source, deadline: float, memory_mb: int, answers: bool = False):
    """Run this file on `source` (an open file or bytes) under `deadline` (a `time.monotonic()`
    value) and `memory_mb`: the minimal notebook's JSON bytes, or the `results.Outcome` that
    stops it (a TIMEOUT without its detail: the caller knows the time limit)."""
    import os
    import resource
    import subprocess
    import time
    from pathlib import Path

    from .results import Outcome, Status

    def limit():
        memory = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        seconds = max(1, int(deadline - time.monotonic()) + 1)
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return Outcome(Status.TIMEOUT)
    feed = {"input": source} if isinstance(source, bytes) else {"stdin": source}
    command = [sys.executable, "-I", "-S", str(Path(__file__).resolve())] + (["--answers"] if answers else [])
    try:
        done = subprocess.run(command, capture_output=True, timeout=remaining, preexec_fn=limit,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, **feed)
    except subprocess.TimeoutExpired:
        return Outcome(Status.TIMEOUT)
    except OSError as error:
        return Outcome(Status.NOT_READABLE, str(error.strerror or error))
    verdict, _, body = done.stdout.partition(b"\n")
    if done.returncode == 0 and verdict == b"ok":
        return body
    if done.returncode == 0 and verdict == b"problem":
        return Outcome(Status.NOT_A_NOTEBOOK, body.decode("utf-8", "replace"))
    if time.monotonic() >= deadline:
        return Outcome(Status.TIMEOUT)
    return Outcome(Status.NOT_A_NOTEBOOK, TOO_COSTLY)


def read_notebook(path, target, deadline: float, memory_mb: int):
    """Read the notebook file at `path` in a limited child process and write its minimal form to
    `target`. Returns None, or the `results.Outcome` that stops grading: NOT_A_NOTEBOOK,
    NOT_READABLE, or TIMEOUT (without its detail) when the deadline (a `time.monotonic()` value)
    passes first. Imported by the judge; the child runs this file alone."""
    from pathlib import Path

    from .results import Outcome, Status
    try:
        with open(path, "rb") as notebook:
            read = _read_in_child(notebook, deadline, memory_mb)
    except OSError as error:
        return Outcome(Status.NOT_READABLE, str(error.strerror or error))
    if isinstance(read, bytes):
        Path(target).write_bytes(read)
        return None
    return read


class Node(dict):
    """A notebook's JSON object whose keys read as attributes too (`cell.source`), as nbformat's
    nodes do, without importing nbformat (which takes seconds: it compiles schema grammars)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def as_nodes(value):
    """`value` (parsed notebook JSON) with every object a `Node`."""
    if isinstance(value, dict):
        return Node((key, as_nodes(item)) for key, item in value.items())
    if isinstance(value, list):
        return [as_nodes(item) for item in value]
    return value


def read_trusted(path) -> Node:
    """A notebook of the course's own (format 4), read without validation; cell sources joined."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if data.get("nbformat") != 4:
        raise ValueError(f"{path}: not a format 4 notebook")
    for cell in data.get("cells", []):
        cell["source"] = _source(cell.get("source", ""))
    return as_nodes(data)


def answers_notebook(data: bytes, seconds: float, memory_mb: int):
    """The written answers' form (see `minimal_notebook`) of the notebook in `data`, read in a
    limited child process within `seconds`, as a `Node`; None when it is not a notebook or costs
    too much to read."""
    import time
    read = _read_in_child(data, time.monotonic() + seconds, memory_mb, answers=True)
    return as_nodes(json.loads(read)) if isinstance(read, bytes) else None


if __name__ == "__main__":
    main()
