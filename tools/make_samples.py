"""Regenerate the demo's sample submissions in data/sample_submissions/<assignment>/.

For each assignment: `full.ipynb` (every graded function filled in with the reference, good written
answers with math, a code block and an embedded image), `partial.ipynb` (the first half filled in,
one weak written answer that attempts script injection), `blank.ipynb` (the untouched student notebook).
They are what a student would hand in; the demo grades them.
Run from the repository root: `.venv/bin/python -m tools.make_samples`.
"""
import ast
import base64
import re
import struct
import zlib

import nbformat

from autograder import assignments
from autograder.assignments import ROOT
from autograder.written_questions import PLACEHOLDER


def defined(source):
    try:
        return [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    except SyntaxError:
        return []


def filled(spec, fraction):
    master = nbformat.read(spec.master, as_version=4)
    student = nbformat.read(spec.student, as_version=4)
    solutions = {}
    for cell in master.cells:
        if cell.cell_type == "code" and "BEGIN SOLUTION" in cell.source:
            for name in defined(cell.source):
                solutions[name] = cell.source
    stubs = [i for i, c in enumerate(student.cells) if c.cell_type == "code" and c.source.rstrip().endswith("...")
             and defined(c.source)]
    for index in stubs[: round(len(stubs) * fraction)]:
        name = defined(student.cells[index].source)[0]
        code = solutions[name].replace("    # BEGIN SOLUTION\n", "").replace("    # END SOLUTION\n", "")
        student.cells[index].source = code.replace("    # END SOLUTION", "").rstrip()
    if fraction >= 1.0:  # value answers too: `name = ...` lines become the master's `# SOLUTION` line
        values = {}
        for cell in master.cells:
            for line in cell.source.split("\n") if cell.cell_type == "code" else []:
                match = re.match(r"^(\s*)(\w+)\s*=\s*(.+?)\s*#\s*SOLUTION\s*$", line)
                if match:
                    values[match.group(2)] = f"{match.group(1)}{match.group(2)} = {match.group(3)}"
        for cell in student.cells:
            if cell.cell_type == "code":
                cell.source = "\n".join(
                    values.get(m.group(2), line) if (m := re.match(r"^(\s*)(\w+)\s*=\s*\.\.\.\s*(#.*)?$", line))
                    else line for line in cell.source.split("\n"))
    write_answers(spec, student, fraction)
    return student


def tiny_png(width=32, height=20) -> bytes:
    """A small gradient image, made byte for byte here so that the samples stay reproducible."""
    rows = b"".join(b"\x00" + b"".join(bytes((x * 8 % 256, y * 12 % 256, 160)) for x in range(width))
                    for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


GOOD_EXTRA = """

Checked numerically with a short script:

```python
import torch
W = torch.randn(4, 4)
print(torch.linalg.matrix_norm(W, ord=2))
```

A sketch of the shape of the result: ![sketch](attachment:sketch.png)
"""

HOSTILE = """I think it is $O(n^2)$ but I am not sure.

<script>alert("grader")</script>
<img src=x onerror="alert('img')">
<a href="javascript:alert('link')" onclick="alert(1)">see here</a>
[my notes](javascript:alert('md'))
![remote](https://example.com/track.png)
<iframe src="https://example.com"></iframe>
<style>body { display: none }</style>
"""


def write_answers(spec, student, fraction):
    """Written answers of varied quality: `full` gives the model answer with a code block and an
    embedded image, `partial` a weak first answer that tries script injection, `blank` nothing."""
    master = nbformat.read(spec.master, as_version=4)
    models, current, inside = [], None, False
    for cell in master.cells:
        text = cell.source.strip()
        if cell.cell_type == "raw" and text.startswith("# BEGIN QUESTION"):
            current = "manual: true" in text
        elif cell.cell_type == "raw" and text.startswith("# BEGIN SOLUTION"):
            inside = True
            if current:
                models.append([])
        elif cell.cell_type == "raw" and text.startswith("# END SOLUTION"):
            inside = False
        elif inside and current and cell.cell_type == "markdown":
            models[-1].append(cell.source.replace("**Model answer.**", "").strip())
    answer_cells = [c for c in student.cells if c.cell_type == "markdown" and c.source.strip() == PLACEHOLDER]
    for number, (cell, model) in enumerate(zip(answer_cells, models)):
        if fraction >= 1.0:
            cell.source = "\n\n".join(model) + (GOOD_EXTRA if number == 0 else "")
            if number == 0:
                cell["attachments"] = {"sketch.png": {"image/png": base64.b64encode(tiny_png()).decode()}}
        elif fraction > 0 and number == 0:
            cell.source = HOSTILE


def main():
    for spec in assignments.available():
        folder = ROOT / "data" / "sample_submissions" / spec.id
        folder.mkdir(parents=True, exist_ok=True)
        for name, fraction in (("full", 1.0), ("partial", 0.5), ("blank", 0.0)):
            nbformat.write(filled(spec, fraction), folder / f"{name}.ipynb")
        print(f"wrote {folder}")


if __name__ == "__main__":
    main()
