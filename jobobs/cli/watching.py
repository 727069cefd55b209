"""watch: the job list, read again every few seconds and drawn in place, like
``kubectl get -w``."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.console import Group as Stack
from rich.live import Live
from rich.text import Text

from jobobs.cli.base import DB_OPTION, client, console, emit, main, view
from jobobs.cli.reading import LIST_COLUMNS, LIST_HEADERS, LIST_SPARE, job_filters
from jobobs.model import humane


@main.command()
@DB_OPTION
@job_filters
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds between two reads.")
@click.option("--count", type=click.IntRange(1), help="Stop after this many reads "
              "(default: until Ctrl-C).")
def watch(db, status, kind, name, limit, interval, count):
    """The job list, newest first, read again every --interval seconds and drawn in place
    until Ctrl-C. Into a pipe, the list is printed again only when it changed.

    Example: jobobs watch --status running --interval 1
    """
    out = console()
    reads = 0
    shown = Live(console=out, auto_refresh=False) if out.is_terminal else _Pipe(out)
    with _CtrlC() as stop, shown:
        while not stop.asked:
            with stop.deferred(), client(db) as jobs:  # the file is held while read
                frame = jobs.jobs(status=list(status), kind=kind, name=name, limit=limit)
            if stop.asked:
                return
            reads += 1
            at = humane.moment(datetime.now(UTC))
            shown.update(Stack(
                Text(f"jobs at {at}, every {interval:g} s (Ctrl-C to leave)", style="dim"),
                view(frame[LIST_COLUMNS], LIST_HEADERS, LIST_SPARE, out.width)),
                refresh=True)
            if count is not None and reads >= count:
                return
            time.sleep(interval)


class _CtrlC:
    """Ctrl-C ends the watch: between two reads at once, during a read (whose DuckDB query
    a KeyboardInterrupt would break into a RuntimeError) once the read is over."""

    def __init__(self) -> None:
        self.asked = self.reading = False

    def __enter__(self) -> _CtrlC:
        self.before = signal.signal(signal.SIGINT, self._asked)
        return self

    def __exit__(self, kind: type | None, *exc: object) -> bool:
        signal.signal(signal.SIGINT, self.before)
        return kind is KeyboardInterrupt

    def _asked(self, signum: int, frame: object) -> None:
        self.asked = True
        if not self.reading:
            raise KeyboardInterrupt

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.reading = True
        try:
            yield
        finally:
            self.reading = False


class _Pipe:
    """Live's stand-in for a pipe or a file: a snapshot is printed when its list differs
    from the last one printed (its first line, the time, aside), after a blank line."""

    def __init__(self, out: Console) -> None:
        self.out, self.last = out, None

    def __enter__(self) -> _Pipe:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, snapshot: Stack, refresh: bool = True) -> None:
        with self.out.capture() as captured:
            self.out.print(snapshot.renderables[1])
        if captured.get() == self.last:
            return
        if self.last is not None:
            click.echo()
        self.last = captured.get()
        emit(self.out, snapshot)
