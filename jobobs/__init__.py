"""jobobs: observable, controllable import and export jobs, with their history in DuckDB."""

import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

import jobobs.kinds  # noqa: F401 - the job kinds register how a runtime submits them
from jobobs.access.client import Client, connect
from jobobs.access.submissions import export_spec, import_spec, python_spec
from jobobs.execution.context import JobContext
from jobobs.execution.handle import JobHandle, JobInfo
from jobobs.execution.runtime import Runtime
from jobobs.model.definition import job
from jobobs.model.errors import (
    IllegalRequest,
    IllegalTransition,
    JobDefinitionError,
    JobNotFound,
    JobobsError,
    RuntimeClosed,
    SchemaError,
    TooManyRejects,
)
from jobobs.model.retries import Retry
from jobobs.model.states import LABELS, Status

__version__ = "0.1.0"
__all__ = [
    "LABELS",
    "Client",
    "IllegalRequest",
    "IllegalTransition",
    "JobContext",
    "JobDefinitionError",
    "JobHandle",
    "JobInfo",
    "JobNotFound",
    "JobobsError",
    "Retry",
    "Runtime",
    "RuntimeClosed",
    "SchemaError",
    "Status",
    "TooManyRejects",
    "connect",
    "export_spec",
    "import_spec",
    "job",
    "notebook",
    "python_spec",
]


def __getattr__(name: str) -> Any:
    """``jobobs.notebook``, imported when first asked for: it loads Panel and HoloViews,
    which a script or a job never needs."""
    if name == "notebook":
        from jobobs.dashboard.notebook import notebook

        return notebook
    raise AttributeError(f"module 'jobobs' has no attribute {name!r}")


# Modules under the names they had before the package was split into layers, so code and
# notebooks written for them, and job specs stored with their functions' old paths, keep
# working: ``import jobobs.queries`` gives ``jobobs.access.queries`` itself. (``jobobs.job``
# stays the decorator: the module that held it is ``jobobs.model.definition``.)
MOVED = {
    "jobobs.analyst": "jobobs.access.analyst",
    "jobobs.analytics": "jobobs.access.analytics",
    "jobobs.cli.control": "jobobs.cli.requests",
    "jobobs.client": "jobobs.access.client",
    "jobobs.commands": "jobobs.model.requests",
    "jobobs.context": "jobobs.execution.context",
    "jobobs.control": "jobobs.execution.loop",
    "jobobs.credentials": "jobobs.dask.credentials",
    "jobobs.dashboard.trends": "jobobs.dashboard.analyticspage",
    "jobobs.dispatch": "jobobs.dask.executor",
    "jobobs.endpoint": "jobobs.db.endpoint",
    "jobobs.errors": "jobobs.model.errors",
    "jobobs.files": "jobobs.db.files",
    "jobobs.handle": "jobobs.execution.handle",
    "jobobs.jobs": "jobobs.kinds",
    "jobobs.jobs.exporting": "jobobs.kinds.exporting",
    "jobobs.jobs.importing": "jobobs.kinds.importing",
    "jobobs.jobs.onepass": "jobobs.kinds.onepass",
    "jobobs.jobs.rawlines": "jobobs.kinds.rawlines",
    "jobobs.jobs.rejects": "jobobs.kinds.rejects",
    "jobobs.jobs.sources": "jobobs.kinds.sources",
    "jobobs.jobs.sql": "jobobs.db.sql",
    "jobobs.jobs.watermarks": "jobobs.kinds.watermarks",
    "jobobs.journal": "jobobs.execution.logbridge",
    "jobobs.ledger": "jobobs.db.ledger",
    "jobobs.process": "jobobs.execution.lifecycle",
    "jobobs.quack": "jobobs.db.quack",
    "jobobs.queries": "jobobs.access.queries",
    "jobobs.readonly": "jobobs.db.readonly",
    "jobobs.records": "jobobs.model.rows",
    "jobobs.recovery": "jobobs.execution.recovery",
    "jobobs.remote": "jobobs.dask.worker",
    "jobobs.runtime": "jobobs.execution.runtime",
    "jobobs.schema": "jobobs.db.schema",
    "jobobs.sifting": "jobobs.db.sifting",
    "jobobs.states": "jobobs.model.states",
    "jobobs.steps": "jobobs.db.steps",
    "jobobs.store": "jobobs.db.store",
    "jobobs.submissions": "jobobs.access.submissions",
    "jobobs.users": "jobobs.access.users",
    "jobobs.values": "jobobs.model.values",
}


def moved(name: str) -> str | None:
    """The module an old name stands for (``jobobs.jobs.x`` is ``jobobs.kinds.x``)."""
    if name in MOVED:
        return MOVED[name]
    package, _, last = name.rpartition(".")
    return f"{MOVED[package]}.{last}" if package in MOVED else None


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: object, target: object = None) -> Any:
        return importlib.util.spec_from_loader(name, self) if moved(name) else None

    def create_module(self, spec: Any) -> ModuleType:
        module = importlib.import_module(moved(spec.name))
        spec.loader_state = module.__spec__  # import sets the alias's: put its own back
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = module.__spec__.loader_state  # already run under its own name


if not any(isinstance(finder, _Moved) for finder in sys.meta_path):
    sys.meta_path.insert(0, _Moved())  # before the path finder, which would load a copy
