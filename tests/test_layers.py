"""Layers point one way: the runtime never imports the UI or the CLI; the base modules use
the standard library only."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "jobobs"


def test_the_runtime_does_not_import_ui_or_cli():
    code = ("import sys, json, jobobs, jobobs.execution.runtime; "
            "print(json.dumps(sorted(m for m in sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True).stdout)
    forbidden = {"panel", "holoviews", "hvplot", "bokeh", "click", "rich", "jobobs.cli"}
    assert not forbidden & {m.split(".")[0] for m in loaded} | (forbidden & set(loaded))


@pytest.mark.parametrize("module", sorted(p.stem for p in (PACKAGE / "model").glob("*.py")))
def test_base_modules_use_the_standard_library_only(module):
    tree = ast.parse((PACKAGE / "model" / f"{module}.py").read_text())
    imported = {(n.module or "") if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in getattr(n, "names", [])}
    outside = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names
               and m.split(".")[0] not in ("jobobs", "__future__")}
    assert outside == set()


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_modules_stay_short(path):
    assert len(path.read_text().splitlines()) < 500
