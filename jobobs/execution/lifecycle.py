"""The runtimes open in this process: at most one per database file, and all of them closed
on SIGTERM, SIGINT and at interpreter exit, so that their running jobs reach ``shutdown``
at a safe point instead of being left for recovery."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from typing import TYPE_CHECKING

from jobobs.db import files
from jobobs.model.errors import JobobsError

if TYPE_CHECKING:
    from jobobs.execution.runtime import Runtime

_live: weakref.WeakSet[Runtime] = weakref.WeakSet()
_installed = False


def claim(path: str) -> None:
    """Refuse a second runtime on a file this process already runs one on; a new database
    file is created owner-only (``jobobs.db.files.create_database``).

    DuckDB lets only one process write a file, and within it one runtime must own the
    jobs: so any job a new runtime finds active was left by a process that is gone.
    """
    if path == ":memory:":
        return
    key = os.path.realpath(path)
    for runtime in list(_live):
        if os.path.realpath(runtime.store.path) == key:
            raise JobobsError(f"a runtime is already open on {path} in this process; use it "
                              "(or close it first)")
    files.create_database(path)


def register(runtime: Runtime, handle_signals: bool | None) -> None:
    """Track an open runtime; install the signal handlers once per process when asked, or
    by default where that is safe (see ``left_to_python``)."""
    global _installed
    _live.add(runtime)
    if _installed or handle_signals is False:
        return
    signums = (signal.SIGTERM, signal.SIGINT) if handle_signals else left_to_python()
    for signum in signums:
        signal.signal(signum, _handler)
    _installed = bool(signums)


def unregister(runtime: Runtime) -> None:
    _live.discard(runtime)


@atexit.register
def close_all() -> None:
    """Close every runtime still open (waiting for closes under way)."""
    for runtime in list(_live):
        runtime.close()


def _handler(number: int, frame: object) -> None:
    # The main thread may hold a lock a close needs, so the close runs on another thread
    # while the main thread unwinds; the exit then waits for it in close_all.
    threading.Thread(target=close_all, name="jobobs-close").start()
    if number == signal.SIGTERM:
        raise SystemExit(0)
    raise KeyboardInterrupt


def left_to_python() -> tuple[int, ...]:
    """Which of SIGTERM and SIGINT still have Python's default handlers, on the main thread
    of a plain Python process (none in IPython or Jupyter, where SIGINT interrupts a cell).
    A SIGINT ignored from the start (a process a shell started in the background, or
    ``nohup``) stays ignored, and SIGTERM is still handled."""
    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None:
        return ()
    if threading.current_thread() is not threading.main_thread():
        return ()
    defaults = ((signal.SIGTERM, signal.SIG_DFL), (signal.SIGINT, signal.default_int_handler))
    return tuple(signum for signum, default in defaults if signal.getsignal(signum) == default)
