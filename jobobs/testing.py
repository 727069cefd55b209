"""Helpers for testing code that uses jobobs (and for jobobs' own tests).

They wait on real state with a deadline instead of sleeping a fixed time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jobobs.model.states import Status

if TYPE_CHECKING:
    from jobobs.execution.runtime import Runtime


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.005,
               message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} not met within {timeout} s")
        time.sleep(interval)


def wait_for_status(rt: Runtime, job_id: int, *statuses: Status | str,
                    timeout: float = 10.0) -> Status:
    """Wait until the job is in one of ``statuses`` (as the runtime knows it)."""
    wanted = {Status(s) for s in statuses}
    return wait_until(lambda: rt.status(job_id) in wanted and rt.status(job_id), timeout,
                      message=f"job {job_id} in {sorted(s.value for s in wanted)}")


def history(rt: Runtime, job_id: int) -> list[tuple[str | None, str]]:
    """The job's written transitions as (from, to) pairs, oldest first."""
    rt.ledger.flush()
    return rt.store.reader().execute(
        "SELECT from_status, to_status FROM job_transitions WHERE job_id = ? ORDER BY seq",
        [job_id],
    ).fetchall()


def journal_messages(rt: Runtime, job_id: int) -> list[str]:
    rt.ledger.flush()
    return [m for (m,) in rt.store.reader().execute(
        "SELECT message FROM journal WHERE job_id = ? ORDER BY seq", [job_id]).fetchall()]
