"""What the runtime hands back: a live handle on a job, and a snapshot of its row."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobobs.model.states import Status

if TYPE_CHECKING:
    from jobobs.execution.runtime import Runtime


def missing(value: Any) -> bool:
    """None, NaN or NaT: a value a DataFrame cell holds for SQL NULL."""
    import pandas as pd  # loaded already by whoever made the DataFrame

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or dict cell
        return False


class JobInfo(dict):
    """A job's row at one moment; keys are the ``jobs`` columns, also readable as attributes."""

    def __init__(self, row: dict[str, Any]):
        super().__init__(row)
        self["status"] = Status(row["status"])

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def label(self) -> str:
        return self["status"].label

    def __repr__(self) -> str:
        return (f"<job {self['id']} {self['name']!r} {self['status'].value} "
                f"processed={self['processed']} rejected={self['rejected']}>")


class JobHandle:
    """Returned by ``Runtime.submit``: the job's id and name, and its controls."""

    def __init__(self, runtime: Runtime, job_id: int, name: str):
        self.runtime, self.id, self.name = runtime, job_id, name

    @property
    def status(self) -> Status:
        return self.runtime.status(self.id)

    def info(self) -> JobInfo:
        return self.runtime.job(self.id)

    def wait(self, timeout: float | None = None) -> JobInfo:
        return self.runtime.wait(self.id, timeout)

    def pause(self) -> int:
        return self.runtime.pause(self.id)

    def resume(self) -> int:
        return self.runtime.resume(self.id)

    def cancel(self) -> int:
        return self.runtime.cancel(self.id)

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self.name!r}>"
