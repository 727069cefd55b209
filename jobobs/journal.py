"""The ``logging`` handler that routes records logged inside a running job to its journal."""

from __future__ import annotations

import logging
import threading
import traceback
from contextvars import ContextVar
from typing import TYPE_CHECKING

from jobobs.records import level_name

if TYPE_CHECKING:
    from jobobs.context import JobContext

current_job: ContextVar[JobContext | None] = ContextVar("jobobs_current_job", default=None)


class JournalHandler(logging.Handler):
    """Routes records logged while a job runs (on its worker thread) to that job's journal.

    Records logged outside a job are left to the other handlers; when there are none they
    go to ``logging.lastResort`` as they would have without this handler.
    """

    def emit(self, record: logging.LogRecord) -> None:
        ctx = current_job.get()
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
    lowered to ``level`` when it is higher; handlers that were already on the root logger
    with no level of their own get the old root level, so what they printed before is
    what they print now. ``release_logging`` puts both back.
    """
    global _handler, _handler_users
    with _handler_lock:
        _handler_users += 1
        if _handler is not None:
            return
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
