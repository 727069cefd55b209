"""How a runtime carries out a submission: the JSON spec another process records in
``job_commands`` (see ``jobobs.access.submissions``, which writes them).

The runtime that owns the file creates the job and writes the request's outcome (the job's
id, or why it was refused) in the same transaction. The spec is checked here too, since
any SQL client can write one:

    {"kind": "python", "name": ..., "function": "module:qualname", "args": [], "kwargs": {}}
    {"kind": "import", "name": ..., "parent": null, "options": {"source": ..., ...}}
    {"kind": "export", "name": ..., "options": {"to": ..., "query": ..., ...}}

Any of them may add ``"retry": {"times": 3, "delay": 30, "backoff": 2}`` (``Retry``).

Python jobs are this layer's own; the other kinds register how they are submitted
(``register``) when their module is imported (``jobobs.kinds``).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jobobs.execution.handle import JobHandle
from jobobs.model import values
from jobobs.model.definition import JobFunction, check_arguments, resolve
from jobobs.model.errors import JobDefinitionError
from jobobs.model.retries import Retry

if TYPE_CHECKING:
    from jobobs.execution.runtime import Runtime

# kind -> fn(runtime, *, name, actor, schedule, retry, [parent,] **options) -> JobHandle,
# or, with check=True, only checks the options and returns None
SUBMITTERS: dict[str, Callable[..., JobHandle]] = {}


def register(kind: str, submit: Callable[..., JobHandle]) -> None:
    """Let submissions of ``kind`` reach ``submit`` (called with the spec's options)."""
    SUBMITTERS[kind] = submit


def kinds() -> tuple[str, ...]:
    return ("python", *SUBMITTERS)


def submit_spec(rt: Runtime, spec: str | dict[str, Any] | None, *,
                actor: str | None = None, schedule: str | None = None,
                retry: Retry | None = None) -> JobHandle:
    """Submit the job a spec describes to the runtime ``rt``; return its handle. A
    schedule's job names its ``schedule`` and carries its ``retry`` policy (else the
    spec's own ``retry``, if any)."""
    spec = _parsed(spec)
    how = dict(name=spec.get("name"), actor=actor, schedule=schedule,
               retry=retry or Retry.given(spec.get("retry")))
    if spec["kind"] == "python":
        args, kwargs = spec.get("args", []), spec.get("kwargs", {})
        return rt.submit(_function(rt, str(spec.get("function"))), *args, **how, **kwargs)
    return SUBMITTERS[spec["kind"]](rt, **how, **_options(spec))


def check_spec(rt: Runtime, spec: str | dict[str, Any]) -> None:
    """Refuse a spec ``submit_spec`` would refuse, without making a job (a schedule's,
    when it is added): its function found and able to take its arguments, its options
    valid, its files where this runtime may write."""
    spec = _parsed(spec)
    Retry.given(spec.get("retry"))
    if spec["kind"] == "python":
        check_arguments(_function(rt, str(spec.get("function"))), spec.get("args", []),
                        spec.get("kwargs", {}))
        return
    SUBMITTERS[spec["kind"]](rt, name=spec.get("name"), check=True, **_options(spec))


def _parsed(spec: str | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(spec, str):
        values.sized("job spec", spec, values.SPEC_LIMIT)
        try:
            spec = json.loads(spec)
        except ValueError as error:
            raise JobDefinitionError(f"the job spec is not JSON ({error})") from None
    if not isinstance(spec, dict) or spec.get("kind") not in kinds():
        raise JobDefinitionError(f"a job spec is a JSON object whose kind is one of "
                                 f"{', '.join(kinds())}")
    name = spec.get("name")
    if name is not None and not isinstance(name, str):
        raise JobDefinitionError("the job's name must be text")
    if name is not None:
        values.name(name, "job's name")
    if spec["kind"] == "python":
        args, kwargs = spec.get("args", []), spec.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise JobDefinitionError("args must be a JSON array and kwargs a JSON object")
        _not_reserved(kwargs, "a job's keyword argument")
    return spec


# What Runtime.submit and the kinds' submitters take for themselves, not from a spec's
# options or a Python job's keyword arguments.
RESERVED = ("name", "actor", "start", "parent", "retry", "schedule", "check")


def _not_reserved(given: dict[str, Any], what: str) -> None:
    taken = [key for key in RESERVED if key in given]
    if taken:
        raise JobDefinitionError(f"{what} cannot be called {taken[0]}= (jobobs uses that "
                                 "name for itself)")


def _options(spec: dict[str, Any]) -> dict[str, Any]:
    options = spec.get("options")
    if not isinstance(options, dict):
        raise JobDefinitionError(f"an {spec['kind']} spec needs its options as a JSON object")
    _not_reserved(options, f"an {spec['kind']}'s option")
    parent = spec.get("parent")
    if parent is not None:
        options = {**options, "parent": values.bigint("parent", parent, minimum=1)}
    return options


def _function(rt: Runtime, path: str) -> JobFunction:
    try:
        return resolve(path)
    except JobDefinitionError:  # again, saying who could not: the submitter may be another
        # process, with other modules installed
        return resolve(path, by=f"{rt.role} (pid {os.getpid()} on {socket.gethostname()})")
