"""Read an untrusted notebook file down to what the grader needs, in a limited child process.

A submission's bytes can be made costly to read: full schema validation (nbformat) of a notebook
with 200,000 odd outputs takes minutes, and a JSON file of millions of tiny containers takes
gigabytes. So the grader never parses a submission in a trusted process. `read_notebook` runs
this file as a fresh interpreter (`python -I -S`, standard library only) under the submission's
own deadline and memory cap; it keeps only the cells' types and sources and the kernelspec, and
writes that minimal notebook (format 4.4, no outputs, no attachments) for the sandbox to run.

Child protocol: the notebook's bytes on stdin; on stdout either "ok\\n" and the minimal notebook
as JSON, or "problem\\n" and a status for the TA.
"""
import json
import sys

CELL_TYPES = ("code", "markdown", "raw")
KERNELSPEC_KEYS = ("name", "display_name", "language")
TOO_COSTLY = "the file is too large or too complex to read within the memory limit"


class NotANotebook(ValueError):
    """The file cannot be graded as a notebook; the message says why, for the TA."""


def _source(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return ""


def minimal_notebook(raw: bytes) -> dict:
    """The cells (type and source) and kernelspec of a notebook file of format 3 or 4.

    Only the shape the grader relies on is checked: a JSON object with a list of cells, at least
    one of them a code cell. Odd cells are left out, as odd fields are; outputs are dropped (a
    submission is run afresh, never judged by what it shows).
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


def main():
    """The child process: read a notebook from stdin, write `ok` and its minimal form, or `problem`
    and why, to stdout."""
    raw = sys.stdin.buffer.read()
    try:
        text = "ok\n" + json.dumps(minimal_notebook(raw))
    except NotANotebook as problem:
        text = f"problem\n{problem}"
    except MemoryError:
        text = "problem\n" + TOO_COSTLY
    sys.stdout.write(text)


# -- the trusted side -----------------------------------------------------------------------------
def read_notebook(path, target, deadline: float, memory_mb: int):
    """Read the notebook file at `path` in a limited child process and write its minimal form to
    `target`. Returns None, or a status for the TA: "not a notebook: ..." or, when the deadline
    (a `time.monotonic()` value) passes first, "timeout". Imported by the judge; the child runs
    this file alone."""
    import os
    import resource
    import subprocess
    import time
    from pathlib import Path

    def limit():
        memory = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        seconds = max(1, int(deadline - time.monotonic()) + 1)
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return "timeout"
    try:
        with open(path, "rb") as notebook:
            done = subprocess.run([sys.executable, "-I", "-S", str(Path(__file__).resolve())], stdin=notebook,
                                  capture_output=True, timeout=remaining, preexec_fn=limit,
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    except subprocess.TimeoutExpired:
        return "timeout"
    except OSError as error:
        return f"not readable: {error.strerror or error}"
    verdict, _, body = done.stdout.partition(b"\n")
    if done.returncode == 0 and verdict == b"ok":
        Path(target).write_bytes(body)
        return None
    if done.returncode == 0 and verdict == b"problem":
        return "not a notebook: " + body.decode("utf-8", "replace")
    if time.monotonic() >= deadline:
        return "timeout"
    return "not a notebook: " + TOO_COSTLY


if __name__ == "__main__":
    main()
