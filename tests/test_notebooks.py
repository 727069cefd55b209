"""The three notebooks run top to bottom (nbclient, a real kernel) against a database the
demo generator built; each checks its own results with asserts."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["job_history", "rejects", "live_monitoring"])
def test_notebook_runs(name, demo_db, tmp_path, monkeypatch):
    monkeypatch.setenv("JOBOBS_DB", demo_db)
    monkeypatch.setenv("JOBOBS_LIVE_DB", str(tmp_path / "live.duckdb"))
    for variable in ("JOBOBS_URL", "JOBOBS_TOKEN", "JOBOBS_ANALYST_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    scratch = tmp_path / "tmp"  # the kernel's temporary folder, to see what it leaves
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors
    assert not list(scratch.glob("jobobs-*")), "the notebook left its files behind"
