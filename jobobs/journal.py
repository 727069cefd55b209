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


def capture_logging(level: int | None = logging.INFO) -> None:
    """Install the journal handler on the root logger (once per process).

    When logging has not been configured (no root handlers), the root level is lowered to
    ``level`` so that a job's ``logger.info`` reaches its journal.
    """
    global _handler, _handler_users
    with _handler_lock:
        root = logging.getLogger()
        if _handler is None:
            if level is not None and not root.handlers and root.level > level:
                root.setLevel(level)
            _handler = JournalHandler()
            root.addHandler(_handler)
        _handler_users += 1


def release_logging() -> None:
    global _handler, _handler_users
    with _handler_lock:
        _handler_users -= 1
        if _handler_users <= 0 and _handler is not None:
            logging.getLogger().removeHandler(_handler)
            _handler, _handler_users = None, 0
