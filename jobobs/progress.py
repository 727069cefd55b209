"""Live progress of jobs in a terminal (rich), until they settle."""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from jobobs.runtime import Runtime
from jobobs.states import ACTIVE, Status

STYLES = {
    Status.RUNNING: "cyan", Status.PAUSING: "yellow", Status.PAUSED: "yellow",
    Status.CANCELING: "magenta", Status.CANCELED: "magenta", Status.FINISHED: "green",
    Status.FAILED: "bold red", Status.SHUTDOWN: "red", Status.QUEUED: "dim",
}


def table(rt: Runtime, job_ids: list[int], now: float | None = None) -> Table:
    """One row per job: status label, progress bar, counters, duration, warning flag."""
    now = time.time() if now is None else now
    view = Table("id", "job", "status", "progress", "%", "processed", "rejected", "time", "⚠")
    for job_id in job_ids:
        info = rt.job(job_id)
        done = info.progress_current / info.progress_total if info.progress_total else 0.0
        took = ((info.finished_at or now) - info.started_at) if info.started_at else 0.0
        view.add_row(
            str(job_id), info.name, f"[{STYLES.get(info.status, '')}]{info.label}",
            ProgressBar(total=1.0, completed=done, width=20), f"{done:.0%}",
            str(info.processed), str(info.rejected), f"{took:.1f}s",
            "⚠" if info.has_warning else "")
    return view


def watch(rt: Runtime, job_ids: list[int], interval: float = 0.25,
          console: Console | None = None) -> None:
    """Redraw a table of the jobs until none of them is active."""
    with Live(table(rt, job_ids), console=console, refresh_per_second=8) as live:
        while any(rt.job(j).status in ACTIVE for j in job_ids):
            time.sleep(interval)
            live.update(table(rt, job_ids))
        live.update(table(rt, job_ids))
    out = console or live.console
    out.line()
    for job_id in job_ids:
        info = rt.job(job_id)
        if info.error:
            out.print(f"job {job_id} {info.name}: {info.error}", style="red", highlight=False)
