"""Submissions as data: the JSON spec a client sends.

A client that does not own the database (the CLI, a notebook, a worker) records a
``submit`` request with a spec in ``job_commands``; the runtime that owns the file carries
it out (``jobobs.execution.submissions``). The spec is checked on both sides: here, so a
mistake is reported at once, and by the runtime, since any SQL client can write one.

    {"kind": "import", "name": ..., "parent": null, "options": {"source": ..., ...}}
    {"kind": "export", "name": ..., "options": {"to": ..., "query": ..., ...}}
    {"kind": "python", "name": ..., "function": "module:qualname", "args": [], "kwargs": {}}

Each may carry ``"retry": {"times": 3, "delay": 30.0, "backoff": 2.0, ...}`` (``Retry``).
A schedule's request carries one of them as its job (``schedule_request``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

from jobobs.execution.submissions import RESERVED
from jobobs.kinds.exporting import ExportOptions
from jobobs.kinds.sources import ImportOptions, expand
from jobobs.model import values
from jobobs.model.definition import JobFunction
from jobobs.model.errors import JobDefinitionError
from jobobs.model.retries import Retry


def _name(name: str | None) -> str | None:
    """A job's name as it will be stored (checked here so the caller hears at once)."""
    return None if name is None else values.name(name, "job's name")


def _absolute(path: str) -> str:
    """Paths are the client's: make them absolute before another process reads them."""
    return path if "://" in path else os.path.abspath(os.path.expanduser(path))


def _with_retry(spec: dict[str, Any], retry: Retry | int | dict[str, Any] | None
                ) -> dict[str, Any]:
    """The spec with its retry policy (``Retry``, or a count), if it has one."""
    policy = Retry.given(retry)
    if policy is not None:
        spec["retry"] = policy.to_dict()
    return spec


def import_spec(source: str | list[str], table: str, *, name: str | None = None,
                parent: int | None = None, retry: Retry | int | dict[str, Any] | None = None,
                files_now: bool = True, **options: Any) -> dict[str, Any]:
    """An import's spec. ``files_now``: local files must exist now (not for a schedule's
    import, whose files may come later)."""

    local = [s for s in ([source] if isinstance(source, str) else source)
             if isinstance(s, str) and "://" not in s]
    if local and files_now:
        expand(local)  # a missing file is reported now, in the caller's words
    sources = [_absolute(s) for s in ([source] if isinstance(source, str) else source)]
    if isinstance(options.get("dataset"), str):
        options["dataset"] = _absolute(options["dataset"])
    checked = ImportOptions(source=sources[0] if isinstance(source, str) else sources,
                            table=table, **options)
    if parent is not None:
        values.bigint("parent", parent, minimum=1)
    return _with_retry({"kind": "import", "name": _name(name), "parent": parent,
                        "options": asdict(checked)}, retry)


def export_spec(to: str, *, name: str | None = None,
                retry: Retry | int | dict[str, Any] | None = None,
                **options: Any) -> dict[str, Any]:

    checked = ExportOptions(to=_absolute(to), **options)
    return _with_retry({"kind": "export", "name": _name(name), "options": asdict(checked)},
                       retry)


def python_spec(function: str | JobFunction, *args: Any, name: str | None = None,
                retry: Retry | int | dict[str, Any] | None = None,
                **kwargs: Any) -> dict[str, Any]:
    path = function.path if isinstance(function, JobFunction) else function
    if not isinstance(path, str) or ":" not in path:
        raise JobDefinitionError(f"a job function is named 'module:function', not {path!r}")
    taken = [key for key in RESERVED if key in kwargs]
    if taken:
        raise JobDefinitionError(f"a job's keyword argument cannot be called {taken[0]}= "
                                 "(jobobs uses that name for itself)")
    spec = _with_retry({"kind": "python", "name": _name(name), "function": path,
                        "args": list(args), "kwargs": kwargs}, retry)
    try:
        json.dumps(spec)
    except (TypeError, ValueError) as error:
        raise JobDefinitionError(f"job arguments must be JSON values ({error})") from None
    return spec


def encode(spec: dict[str, Any]) -> str:
    return json.dumps(spec)


def schedule_request(name: str, job: dict[str, Any] | None = None, *, verb: str = "add",
                     **fields: Any) -> dict[str, Any]:
    """A request about a schedule, as the runtime carries it out
    (``jobobs.execution.scheduling``): ``add`` with the job's spec and when it runs, or
    ``pause``, ``resume``, ``remove``, ``run``."""
    request: dict[str, Any] = {"verb": verb, "name": _name(name)}
    if verb == "add":
        if not isinstance(job, dict) or "kind" not in job:
            raise JobDefinitionError("a schedule's job is a spec: jobobs.import_spec(...), "
                                     "export_spec(...) or python_spec(...)")
        retry = Retry.given(fields.pop("retry", None))
        request.update(spec=job, **{k: v for k, v in fields.items() if v is not None})
        if retry is not None:
            request["retry"] = retry.to_dict()
    try:
        json.dumps(request)
    except (TypeError, ValueError) as error:
        raise JobDefinitionError(f"a schedule's fields must be JSON values ({error})") from None
    return request
