"""Submissions as data: the JSON spec a client sends, and how a runtime carries it out.

A client that does not own the database (the CLI, a notebook, a worker) records a
``submit`` request with a spec in ``job_commands``; the runtime that owns the file creates
the job and writes the request's outcome (the job's id, or why it was refused) in the same
transaction. The spec is checked on both sides: by the client, so a mistake is reported at
once, and by the runtime, since any SQL client can write one.

    {"kind": "import", "name": ..., "parent": null, "options": {"source": ..., ...}}
    {"kind": "export", "name": ..., "options": {"to": ..., "query": ..., ...}}
    {"kind": "python", "name": ..., "function": "module:qualname", "args": [], "kwargs": {}}
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict
from typing import Any

from jobobs.model import values
from jobobs.model.definition import JobFunction, resolve
from jobobs.model.errors import JobDefinitionError, JobobsError

KINDS = ("import", "export", "python")


def _name(name: str | None) -> str | None:
    """A job's name as it will be stored (checked here so the caller hears at once)."""
    return None if name is None else values.name(name, "job's name")


def _absolute(path: str) -> str:
    """Paths are the client's: make them absolute before another process reads them."""
    return path if "://" in path else os.path.abspath(os.path.expanduser(path))


def import_spec(source: str | list[str], table: str, *, name: str | None = None,
                parent: int | None = None, **options: Any) -> dict[str, Any]:
    from jobobs.kinds.sources import ImportOptions, expand

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
    from jobobs.kinds.exporting import ExportOptions

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


def _function(rt: Any, path: str) -> JobFunction:
    try:
        return resolve(path)
    except JobDefinitionError:  # again, saying who could not (only now: it reads a file)
        return resolve(path, by=_importer(rt))


def _importer(rt: Any) -> str:
    """Who imports a submitted job's function, for its error: the submitter may be another
    process, with other modules installed."""
    from jobobs.access import endpoint

    try:
        server = endpoint.read(rt.store.path)
    except JobobsError:
        server = None
    who = "the server" if server is not None and server.pid == os.getpid() else "the runtime"
    return f"{who} (pid {os.getpid()} on {socket.gethostname()})"


def encode(spec: dict[str, Any]) -> str:
    return json.dumps(spec)


def submit_spec(rt: Any, spec: str | dict[str, Any] | None, *, actor: str | None = None) -> Any:
    """Submit the job a spec describes to the runtime ``rt``; return its handle."""
    if isinstance(spec, str):
        values.sized("job spec", spec, values.SPEC_LIMIT)
        try:
            spec = json.loads(spec)
        except ValueError as error:
            raise JobDefinitionError(f"the job spec is not JSON ({error})") from None
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        raise JobDefinitionError(f"a job spec is a JSON object whose kind is one of "
                                 f"{', '.join(KINDS)}")
    name = spec.get("name")
    if name is not None and not isinstance(name, str):
        raise JobDefinitionError("the job's name must be text")
    if spec["kind"] == "python":
        args, kwargs = spec.get("args", []), spec.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise JobDefinitionError("args must be a JSON array and kwargs a JSON object")
        return rt.submit(_function(rt, str(spec.get("function"))), *args, name=name,
                         actor=actor, **kwargs)
    options = spec.get("options")
    if not isinstance(options, dict):
        raise JobDefinitionError(f"an {spec['kind']} spec needs its options as a JSON object")
    if spec["kind"] == "import":
        from jobobs.kinds import importing

        parent = spec.get("parent")
        if parent is not None:
            values.bigint("parent", parent, minimum=1)
        return importing.submit(rt, name=name, actor=actor, parent=parent, **options)
    from jobobs.kinds import exporting

    return exporting.submit(rt, name=name, actor=actor, **options)
