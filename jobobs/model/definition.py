"""Job definitions: the ``@job`` decorator, and finding a job's function again by its path.

A job's spec stores its function as ``module:qualname`` so that a runtime started after a
crash can import it and resume the job from its checkpoint.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from jobobs.model.errors import JobDefinitionError
from jobobs.model.retries import Retry

DEFAULT_MAX_REJECTS = 100
_registry: dict[str, JobFunction] = {}


class JobFunction:
    """A function that runs as a job: ``fn(ctx, *args, **kwargs)``, with its options."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None,
        max_rejects: int | None = DEFAULT_MAX_REJECTS, checkpoint_interval: float = 0.0,
        kind: str = "python", retry: Retry | int | dict[str, Any] | None = None,
    ):
        if not callable(fn):
            raise JobDefinitionError(f"a job must be a function, not {type(fn).__name__}")
        if max_rejects is not None and max_rejects < 0:
            raise JobDefinitionError("max_rejects must be None (no limit) or a count >= 0")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "job")
        self.max_rejects = max_rejects
        self.checkpoint_interval = checkpoint_interval
        self.kind = kind
        self.retry = Retry.given(retry)
        self.path = f"{fn.__module__}:{fn.__qualname__}"
        self.__doc__ = fn.__doc__
        _registry[self.path] = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<job {self.name!r} {self.path}>"

    def spec(self, args: tuple, kwargs: dict) -> str:
        """The JSON spec stored with the job; arguments must be JSON so a restart can use them."""
        try:
            return json.dumps(
                {"function": self.path, "args": list(args), "kwargs": kwargs,
                 "max_rejects": self.max_rejects,
                 "checkpoint_interval": self.checkpoint_interval}
            )
        except (TypeError, ValueError) as error:
            raise JobDefinitionError(
                f"job {self.name!r}: arguments must be JSON-serializable so the job can resume "
                f"after a restart ({error})"
            ) from None


def job(
    fn: Callable[..., Any] | None = None, *, name: str | None = None,
    max_rejects: int | None = DEFAULT_MAX_REJECTS, checkpoint_interval: float = 0.0,
    kind: str = "python", retry: Retry | int | dict[str, Any] | None = None,
) -> Any:
    """Declare a job: ``@job`` or ``@job(name="score-customers", max_rejects=None)``.

    ``max_rejects`` is how many rejects a run may record before it fails (None: no limit;
    the default, 100, is the model product's). ``checkpoint_interval`` spaces checkpoint
    saves by at least that many seconds for jobs that checkpoint in a tight loop.
    ``retry`` (a ``Retry``, or a count) retries a failed run from its last checkpoint.
    """
    def wrap(f: Callable[..., Any]) -> JobFunction:
        return JobFunction(f, name=name, max_rejects=max_rejects,
                           checkpoint_interval=checkpoint_interval, kind=kind, retry=retry)
    return wrap(fn) if fn is not None else wrap


def as_job(fn: Callable[..., Any] | JobFunction) -> JobFunction:
    return fn if isinstance(fn, JobFunction) else JobFunction(fn)


def resolve(path: str, by: str | None = None) -> JobFunction:
    """The job function at ``module:qualname``: registered in this process, or imported.
    ``by`` names who looks, for the error: a submitter and the runtime that imports the
    function may be different processes with different modules installed."""
    if path in _registry:
        return _registry[path]
    module_name, _, qualname = path.partition(":")
    if "<" in qualname or not qualname:
        raise JobDefinitionError(f"job function {path} cannot be found again in a new process")
    try:
        target: Any = sys.modules.get(module_name) or importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        where = f" by {by}" if by else ""
        raise JobDefinitionError(f"job function {path} cannot be found{where}: {error}") from None
    return as_job(target)


def check_arguments(definition: JobFunction, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """Refuse arguments the function cannot take, before a job is created only to fail."""
    try:
        inspect.signature(definition.fn).bind(None, *args, **kwargs)  # None: the context
    except TypeError as error:
        raise JobDefinitionError(f"job {definition.name!r} cannot take these arguments: "
                                 f"{error}") from None
    except ValueError:  # a callable without a signature: the run will tell
        pass
