"""Submissions as data: the JSON spec a client sends.

A client that does not own the database (the CLI, a notebook, a worker) records a
``submit`` request with a spec in ``job_commands``; the runtime that owns the file carries
it out (``jobobs.execution.submissions``). The spec is checked on both sides: here, so a
mistake is reported at once, and by the runtime, since any SQL client can write one.

    {"kind": "import", "name": ..., "parent": null, "options": {"source": ..., ...}}
    {"kind": "export", "name": ..., "options": {"to": ..., "query": ..., ...}}
    {"kind": "python", "name": ..., "function": "module:qualname", "args": [], "kwargs": {}}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

from jobobs.kinds.exporting import ExportOptions
from jobobs.kinds.sources import ImportOptions, expand
from jobobs.model import values
from jobobs.model.definition import JobFunction
from jobobs.model.errors import JobDefinitionError


def _name(name: str | None) -> str | None:
    """A job's name as it will be stored (checked here so the caller hears at once)."""
    return None if name is None else values.name(name, "job's name")


def _absolute(path: str) -> str:
    """Paths are the client's: make them absolute before another process reads them."""
    return path if "://" in path else os.path.abspath(os.path.expanduser(path))


def import_spec(source: str | list[str], table: str, *, name: str | None = None,
                parent: int | None = None, **options: Any) -> dict[str, Any]:

    local = [s for s in ([source] if isinstance(source, str) else source)
             if isinstance(s, str) and "://" not in s]
    if local:
        expand(local)  # a missing file is reported now, in the caller's words
    sources = [_absolute(s) for s in ([source] if isinstance(source, str) else source)]
    if isinstance(options.get("dataset"), str):
        options["dataset"] = _absolute(options["dataset"])
    checked = ImportOptions(source=sources[0] if isinstance(source, str) else sources,
                            table=table, **options)
    if parent is not None:
        values.bigint("parent", parent, minimum=1)
    return {"kind": "import", "name": _name(name), "parent": parent, "options": asdict(checked)}


def export_spec(to: str, *, name: str | None = None, **options: Any) -> dict[str, Any]:

    checked = ExportOptions(to=_absolute(to), **options)
    return {"kind": "export", "name": _name(name), "options": asdict(checked)}


def python_spec(function: str | JobFunction, *args: Any, name: str | None = None,
                **kwargs: Any) -> dict[str, Any]:
    path = function.path if isinstance(function, JobFunction) else function
    if not isinstance(path, str) or ":" not in path:
        raise JobDefinitionError(f"a job function is named 'module:function', not {path!r}")
    spec = {"kind": "python", "name": _name(name), "function": path, "args": list(args),
            "kwargs": kwargs}
    try:
        json.dumps(spec)
    except (TypeError, ValueError) as error:
        raise JobDefinitionError(f"job arguments must be JSON values ({error})") from None
    return spec


def encode(spec: dict[str, Any]) -> str:
    return json.dumps(spec)
