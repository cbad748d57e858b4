"""The tour notebook runs top to bottom (so it can never silently rot)."""

from __future__ import annotations

import os
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
pytest.importorskip("distributed")

pytestmark = pytest.mark.slow  # a kernel and a dask cluster: run by `pytest -m slow` (CI runs both)

NOTEBOOK = os.path.join(os.path.dirname(__file__), os.pardir, "notebooks", "tour.ipynb")


def test_tour_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws the PNG
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell that failed
    elapsed = time.perf_counter() - start
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors
    # the plot was drawn
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert elapsed < 120, f"the tour took {elapsed:.0f} s; keep it under a minute"
