"""examples/quickstart.ipynb executes in a real Jupyter kernel (nbclient) and shows the verdict
table inline. Its parameters cell is replaced by a tiny sweep (eager against fx, one batch size,
0.1 s budget), as papermill would: the committed defaults sweep the shipped MLP, minutes here."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import TINY_MLP

nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' (nbclient, ipykernel)")
nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[dev]'")
pytest.importorskip("ipykernel", reason="pip install -e '.[dev]'")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"


def _outputs(cell: dict, mime: str) -> str:
    return "".join(
        str(o.get("data", {}).get(mime, "")) + str(o.get("text", ""))
        for o in cell.get("outputs", [])
    )


@pytest.mark.slow
def test_quickstart_notebook_shows_the_verdict_table(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "the notebook needs one cell tagged 'parameters'"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the notebook without outputs (Jupyter: Edit > Clear Outputs of All Cells)"
    )
    scenario = tmp_path / "tiny.py"
    scenario.write_text(textwrap.dedent(TINY_MLP), encoding="utf-8")
    params[0].source = (
        f"SCENARIO = {str(scenario)!r}\nSWEEP = {{'backend': ['eager', 'fx'], 'batch_size': [4]}}\n"
        "SETTINGS = {'budget_s': 0.1, 'min_reps': 3, 'warmup_s': 0.01}\n"
        f"OUT = {str(tmp_path / 'run')!r}"
    )
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails
    code = [c for c in nb.cells if c.cell_type == "code"]
    summary = _outputs(code[1], "text/html")  # `run`: Run._repr_html_
    assert "<table>" in summary and "<td>fx</td>" in summary and "<svg" in summary
    table = _outputs(code[2], "text/plain")  # run.df[[..., "verdict", "speedup_vs_eager"]]
    assert "verdict" in table and "speedup_vs_eager" in table and "fx" in table
    assert "A/B" in _outputs(code[-1], "text/plain")  # measure_ratio's summary line
    assert (tmp_path / "run" / "report.html").is_file()
