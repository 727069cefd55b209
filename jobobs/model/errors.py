"""Every exception jobobs raises, in one tree.

    JobobsError                      anything jobobs refuses or cannot do
    ├── JobNotFound                  no job with that id
    ├── IllegalTransition            a status change the state machine forbids
    ├── IllegalRequest               start/pause/resume/cancel in a status that forbids it
    ├── JobDefinitionError           a job function that cannot be found or called
    ├── RuntimeClosed                the runtime was closed; it accepts no more work
    ├── SchemaError                  a database newer than this jobobs, or not a jobobs database
    ├── QueryRefused                 a query where only reading is allowed does more (carries why)
    └── TooManyRejects               a job crossed its reject threshold (carries count and limit)

    JobInterrupt (BaseException)     raised inside a job at a safe point; the runtime catches it
    ├── PauseInterrupt               pause requested: the job stops at its checkpoint
    ├── CancelInterrupt              cancel requested
    └── ShutdownInterrupt            the runtime is shutting down

JobInterrupt derives from BaseException so that a job's own ``except Exception`` does not
swallow a pause or a cancel. ``one_line`` gives any error as the one line a message shows.
"""

from __future__ import annotations


class JobobsError(Exception):
    """Base of every error jobobs raises on purpose."""


class JobNotFound(JobobsError):
    def __init__(self, job_id: object):
        self.job_id = job_id
        super().__init__(f"job {job_id} does not exist")


class IllegalTransition(JobobsError):
    def __init__(self, job_id: object, current: str, new: str):
        self.job_id, self.current, self.new = job_id, current, new
        super().__init__(f"job {job_id}: cannot go from {current!r} to {new!r}")


class IllegalRequest(JobobsError):
    def __init__(self, job_id: object, command: str, status: str):
        self.job_id, self.command, self.status = job_id, command, status
        super().__init__(f"job {job_id}: cannot {command} a job that is {status!r}")


class JobDefinitionError(JobobsError):
    """A job's function cannot be imported, or is not a function taking a context."""


class RuntimeClosed(JobobsError):
    def __init__(self):
        super().__init__("the runtime is closed")


class SchemaError(JobobsError):
    """The database is not one jobobs can use (newer schema, or not a jobobs database)."""


class QueryRefused(JobobsError):
    """A query given where only reading is allowed would write, read files, reach servers
    or change settings; ``reason`` says which."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class TooManyRejects(JobobsError):
    def __init__(self, rejected: int, limit: int):
        self.rejected, self.limit = rejected, limit
        super().__init__(f"too many rejects: {rejected} (the limit is {limit})")


class JobInterrupt(BaseException):
    """Raised at a safe point to stop a job; never seen outside the runtime."""


class PauseInterrupt(JobInterrupt):
    pass


class CancelInterrupt(JobInterrupt):
    pass


class ShutdownInterrupt(JobInterrupt):
    pass


def one_line(error: BaseException | str) -> str:
    """The first line of an error's text that is not blank, stripped; for an error with no
    text, its type's name (for text with none, "")."""
    text = error if isinstance(error, str) else str(error)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "" if isinstance(error, str) else type(error).__name__
