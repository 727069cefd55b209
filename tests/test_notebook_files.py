"""The rejects notebook writes its round trip's files (rejects.csv, fixed.csv) in a
temporary folder, not in the folder it runs in (notebooks/ in JupyterLab)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "rejects.ipynb"


def test_the_rejects_notebook_leaves_its_folder_as_it_was(demo_db, tmp_path, monkeypatch):
    monkeypatch.setenv("JOBOBS_DB", demo_db)
    for variable in ("JOBOBS_URL", "JOBOBS_TOKEN", "JOBOBS_ANALYST_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    here = tmp_path / "notebooks"
    here.mkdir()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(here)}}).execute()
    assert not [output for cell in notebook.cells for output in cell.get("outputs", [])
                if output.get("output_type") == "error"]
    assert sorted(path.name for path in here.iterdir()) == []
