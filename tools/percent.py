"""Convert between a master notebook and a plain-text "percent" script.

Instructors edit `solutions/*.ipynb` (the single source). This tool exists for reviewing
and writing notebooks in a text editor and for readable diffs:

    python tools/percent.py to-py solutions/ssm_forward_cpu.ipynb > /tmp/cpu.py
    python tools/percent.py to-nb /tmp/cpu.py solutions/ssm_forward_cpu.ipynb

Cells are separated by `# %%` (code), `# %% [markdown]` and `# %% [raw]` lines; markdown and
raw cells are written as `# `-prefixed comment lines.
"""
import re
import sys

import nbformat

MARKER = re.compile(r"^# %%(?: \[(markdown|raw)\])?\s*$")


def script_to_notebook(text: str) -> nbformat.NotebookNode:
    cells, kind, lines = [], None, []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "code":
            cells.append(nbformat.v4.new_code_cell(body))
            return
        body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.split("\n"))
        maker = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_raw_cell
        cells.append(maker(body))

    for line in text.split("\n"):
        match = MARKER.match(line)
        if match:
            flush()
            kind, lines = match.group(1) or "code", []
        elif kind is not None:
            lines.append(line)
    flush()
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i:03d}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    return nb


def notebook_to_script(nb) -> str:
    out = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            out += ["# %%", cell.source, ""]
        else:
            out.append(f"# %% [{cell.cell_type}]")
            out += [("# " + line) if line else "#" for line in cell.source.split("\n")]
            out.append("")
    return "\n".join(out)


def main(argv):
    if len(argv) >= 2 and argv[0] == "to-py":
        sys.stdout.write(notebook_to_script(nbformat.read(argv[1], as_version=4)))
    elif len(argv) == 3 and argv[0] == "to-nb":
        with open(argv[1]) as f:
            nb = script_to_notebook(f.read())
        nbformat.write(nb, argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
