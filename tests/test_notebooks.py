"""The notebooks are committed with the outputs of a real run (a learner sees the figures without root),
and run again from top to bottom here."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest

from tests.render.images import png_size

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
HEX = re.compile(r"\b0x[0-9a-f]+\b", re.IGNORECASE)
MAXIMUM_PNG_BYTES = 400_000
"""A stored figure at the notebook's modest dpi; the loss ladder, the largest, is about 340 KB."""


def check_outputs(notebook: nbformat.NotebookNode, name: str) -> None:
    """Ran top to bottom without errors; each figure shown once, as a small PNG; no flags printed as hex."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), name
    for cell in code:
        outputs = cell.get("outputs", [])
        assert all(output.output_type != "error" for output in outputs), (name, cell.source)
        images = [output for output in outputs if "image/png" in output.get("data", {})]
        figures_drawn = len(re.findall(r"\bdraw_\w+\(", cell.source))
        assert len(images) == figures_drawn, (name, cell.source)  # every figure once: none lost, none twice
        for image in images:
            data = base64.b64decode(image.data["image/png"])
            width, height = png_size(data)
            assert 300 <= width <= 1200 and height >= 200 and len(data) <= MAXIMUM_PNG_BYTES, (name, width, len(data))
        text = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
        assert not HEX.search(text), (name, HEX.search(text))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebooks_are_committed_with_the_outputs_of_a_run(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), path.name
    check_outputs(notebook, path.name)


@pytest.mark.root
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's temporary files go where pytest cleans up
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":  # the stored outputs are not the ones checked below
            cell.outputs, cell.execution_count = [], None
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    assert list(tmp_path.glob("sockstory-notebook-*"))  # it did write there, not in /tmp
    check_outputs(notebook, path.name)
