"""The ``logging`` handler that routes records logged inside a running job to its journal.

A record belongs to the job the logging code works for: the job whose function runs in
the calling thread, else the job that submitted the ``ThreadPoolExecutor`` task running
now, else the job whose thread (or a thread of it, and so on) started the calling thread.
Threads do not inherit context variables, and Python 3.11 has no hook that runs when a
thread is started, so while a runtime captures logging ``threading.Thread.start`` and
``ThreadPoolExecutor.submit`` are wrapped to note who starts or submits (the way
OpenTelemetry's threading instrumentation carries its context); both wrappers only look
up a context variable when no job runs. A record is routed only while its job runs: a
thread a job leaves behind logs to the other handlers once the job has ended.
"""

from __future__ import annotations

import logging
import threading
import traceback
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from jobobs.model.rows import level_name

if TYPE_CHECKING:
    from jobobs.execution.context import JobContext

current_job: ContextVar[JobContext | None] = ContextVar("jobobs_current_job", default=None)
# True while a pool task runs: the job that submitted it (maybe none) is its owner, not
# the job that started the pool's thread.
_pool_task: ContextVar[bool] = ContextVar("jobobs_pool_task", default=False)
# the job each thread was started for, held weakly both ways: a long-lived thread (a
# shared pool's) must not keep an ended job's context, its row and its store, alive
_started_by: weakref.WeakKeyDictionary[threading.Thread, weakref.ref[JobContext]] = (
    weakref.WeakKeyDictionary())
_running: set[JobContext] = set()


def owner() -> JobContext | None:
    """The running job the calling code works for (see the module's docstring), or None."""
    ctx = current_job.get()
    if ctx is None and not _pool_task.get():
        started_for = _started_by.get(threading.current_thread())
        ctx = started_for() if started_for is not None else None
    return ctx if ctx in _running else None


@contextmanager
def running(ctx: JobContext, module: str | None = None) -> Iterator[None]:
    """Run a job's function (defined in ``module``): what it and the threads it starts log
    goes to its journal, DEBUG included from the loggers of its own package."""
    if module:
        _debug_from(module.split(".")[0])
    token = current_job.set(ctx)
    _running.add(ctx)
    try:
        yield
    finally:
        _running.discard(ctx)
        current_job.reset(token)


_wrapped: dict[str, Callable[..., Any]] = {}  # what the wrappers call: start, submit


def _start(self: threading.Thread) -> None:
    ctx = owner()
    if ctx is not None:
        _started_by[self] = weakref.ref(ctx)
    _wrapped["start"](self)


def _submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any,
            **kwargs: Any) -> Future:
    return _wrapped["submit"](self, _on_behalf_of(owner(), fn), *args, **kwargs)


def _on_behalf_of(ctx: JobContext | None, fn: Callable[..., Any]) -> Callable[..., Any]:
    def task(*args: Any, **kwargs: Any) -> Any:
        job, pooled = current_job.set(ctx), _pool_task.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _pool_task.reset(pooled)
            current_job.reset(job)
    return task


def _follow_threads() -> None:
    """Wrap the two places a thread gets its owner, once per process and for good: with no
    job running the wrappers only pass calls on, and unwrapping could drop a wrapper that
    someone else put over ours since."""
    if not _wrapped:
        _wrapped["start"], threading.Thread.start = threading.Thread.start, _start
        _wrapped["submit"], ThreadPoolExecutor.submit = ThreadPoolExecutor.submit, _submit


class JournalHandler(logging.Handler):
    """Routes records logged for a running job (see ``owner``) to that job's journal.

    Records logged outside a job are left to the other handlers; when there are none they
    go to ``logging.lastResort`` as they would have without this handler.
    """

    def emit(self, record: logging.LogRecord) -> None:
        ctx = owner()
        if ctx is None:
            others = [h for h in logging.getLogger().handlers if h is not self]
            if not others and logging.lastResort and record.levelno >= logging.lastResort.level:
                logging.lastResort.handle(record)
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            ctx.log.write(level_name(record.levelno), message, getattr(record, "code", None))
        except Exception:
            self.handleError(record)


_handler_lock = threading.Lock()
_handler: JournalHandler | None = None
_handler_users = 0
_restore: list[tuple[logging.Handler | logging.Logger, int]] = []


def capture_logging(level: int | None = logging.INFO) -> None:
    """Install the journal handler on the root logger (once per process).

    So that a job's ``logger.info(...)`` reaches its journal, the root logger's level is
    lowered to ``level`` when it is higher (a logger given a level of its own keeps it);
    handlers that were already on the root logger with no level of their own get the old
    root level, so what they printed before is what they print now. DEBUG is taken only
    from the job's own package (``running``): lowering the root to DEBUG would fill
    journals with every library's chatter (an HTTP client's URLs, tokens included) and
    make each ``debug`` call in the process some fifty times dearer.
    ``release_logging`` puts all of it back.
    """
    global _handler, _handler_users
    with _handler_lock:
        _handler_users += 1
        if _handler is not None:
            return
        _follow_threads()
        root = logging.getLogger()
        if level is not None and root.level > level:
            _restore.append((root, root.level))
            for handler in root.handlers:
                if handler.level == logging.NOTSET:
                    _restore.append((handler, handler.level))
                    handler.setLevel(root.level)
            root.setLevel(level)
        _handler = JournalHandler()
        root.addHandler(_handler)


def _debug_from(package: str) -> None:
    """Let the loggers of a job's own package (``mypkg`` for ``mypkg.jobs``) pass DEBUG,
    as ``ctx.log.debug`` does, unless the package's logger was given a level."""
    with _handler_lock:
        logger = logging.getLogger(package)
        if _handler is None or logger.level != logging.NOTSET:
            return
        _restore.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)


def release_logging() -> None:
    global _handler, _handler_users
    with _handler_lock:
        _handler_users -= 1
        if _handler_users > 0 or _handler is None:
            return
        logging.getLogger().removeHandler(_handler)
        for target, level in _restore:
            target.setLevel(level)
        _restore.clear()
        _handler, _handler_users = None, 0
