"""notebook_shape: the minimal notebook, its written answers' form, and the trusted reader."""
import json
import time

import pytest

from autograder import notebook_shape
from autograder.notebook_shape import SHOWN_OUTPUTS, Node, answers_notebook, as_nodes, minimal_notebook, read_trusted
from autograder.results import Outcome, Status


def notebook(*cells):
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": list(cells)}).encode()


OUTPUT = {"output_type": "stream", "name": "stdout", "text": ["x"]}
CODE = {"cell_type": "code", "id": "c1", "source": ["a = 1\n", "a"], "metadata": {"tags": ["t"]},
        "execution_count": 3, "outputs": [OUTPUT] * (SHOWN_OUTPUTS + 5)}
PICTURE = {"image/png": "iVBORw0KGgo="}
MARKDOWN = {"cell_type": "markdown", "id": "m1", "source": "![p](attachment:p.png)", "metadata": {},
            "attachments": {"p.png": PICTURE}}


def test_the_graded_form_keeps_only_types_and_sources():
    assert minimal_notebook(notebook(CODE, MARKDOWN))["cells"] == [
        {"cell_type": "code", "metadata": {}, "source": "a = 1\na", "outputs": [], "execution_count": None},
        {"cell_type": "markdown", "metadata": {}, "source": "![p](attachment:p.png)"}]


def test_the_answers_form_keeps_ids_attachments_and_the_first_outputs():
    assert minimal_notebook(notebook(CODE, MARKDOWN), answers=True)["cells"] == [
        {"cell_type": "code", "metadata": {}, "source": "a = 1\na", "outputs": [OUTPUT] * SHOWN_OUTPUTS,
         "execution_count": None, "id": "c1"},
        {"cell_type": "markdown", "metadata": {}, "source": "![p](attachment:p.png)", "id": "m1",
         "attachments": {"p.png": PICTURE}}]


def test_the_answers_form_drops_odd_ids_and_outputs():
    odd = dict(CODE, id="x" * 65, outputs=[OUTPUT, "not an output", 7])
    assert minimal_notebook(notebook(odd), answers=True)["cells"][0]["outputs"] == [OUTPUT]
    assert "id" not in minimal_notebook(notebook(odd), answers=True)["cells"][0]
    assert "id" not in minimal_notebook(notebook(dict(CODE, id=12)), answers=True)["cells"][0]


def test_nodes_read_as_attributes_and_as_keys():
    node = as_nodes({"cells": [{"source": "s", "metadata": {"k": 1}}]})
    assert isinstance(node, Node) and isinstance(node.cells[0].metadata, Node)
    assert node.cells[0].source == node["cells"][0]["source"] == "s"
    with pytest.raises(AttributeError, match="outputs"):
        _ = node.cells[0].outputs
    assert node.cells[0].get("outputs", []) == []


def test_answers_are_read_in_a_child_within_limits():
    read = answers_notebook(notebook(CODE), seconds=30, memory_mb=1024)
    assert read.cells[0].id == "c1" and read.cells[0].source == "a = 1\na"
    assert answers_notebook(b"not json", seconds=30, memory_mb=1024) is None
    assert notebook_shape._read_in_child(notebook(CODE), time.monotonic() - 1, 1024) == Outcome(Status.TIMEOUT)
    assert notebook_shape._read_in_child(b"{}", time.monotonic() + 30, 1024) == \
        Outcome(Status.NOT_A_NOTEBOOK, "the file is JSON, but not a Jupyter notebook")


def test_the_trusted_reader_joins_sources_and_refuses_other_formats(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_bytes(notebook(CODE))
    assert read_trusted(path).cells[0].source == "a = 1\na"
    path.write_text(json.dumps({"nbformat": 3, "worksheets": []}))
    with pytest.raises(ValueError, match="not a format 4 notebook"):
        read_trusted(path)
