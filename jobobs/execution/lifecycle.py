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
    by default where that is safe (see ``defaults_in_place``)."""
    global _installed
    _live.add(runtime)
    if not _installed and (handle_signals or (handle_signals is None and defaults_in_place())):
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _handler)
        _installed = True


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


def defaults_in_place() -> bool:
    """True on the main thread of a plain Python process whose SIGTERM and SIGINT still have
    Python's default handlers (not in IPython or Jupyter, where SIGINT interrupts a cell)."""
    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None:
        return False
    return (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
