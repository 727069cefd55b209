"""A schedule's tick is kept exactly once through a kill -9 (issue 16).

A tick's job and the schedule's row (its next run moved on, its last job) are written in
one transaction, so a crash leaves both or neither: reopened, the runtime neither loses
the tick nor runs it twice. The first tests kill a child runtime (``schedule_child.py``)
at two chosen moments on a clock it sets; the last kills a real ``jobobs serve`` at random
moments while an interval schedule ticks every second.

Which tick a job was made for is read from the job's first journal line ("Made by
schedule tick for its tick of ...") and from the schedule's log ("Job N made for its tick
of ..."), and the two must agree.

``JOBOBS_SCHEDULE_KILLS`` sets the number of kills of the last test (default 7).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import duckdb
import jobs
import pandas as pd
import pytest
from serving import TESTS, Server, env, free_port

import jobobs
from jobobs.access.submissions import python_spec
from jobobs.model.states import Status
from jobobs.testing import wait_for_status, wait_until

NAME = "tick"  # the schedule of schedule_child.py
START = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC, when the child adds the schedule
EVERY = 60.0
FIRST, SECOND = "2026-01-01 00:01:00 UTC", "2026-01-01 00:02:00 UTC"

# Everything the checks need, read in one query so that it is one snapshot, even from a
# server whose schedule ticks meanwhile.
FACTS = r"""
    SELECT 'job' AS what, id AS job_id, NULL::BIGINT AS number, NULL::VARCHAR AS tick,
           NULL::BIGINT AS seq, NULL::DOUBLE AS at
      FROM jobs WHERE schedule = ?
    UNION ALL
    SELECT 'made', job_id, NULL, regexp_extract(message, ' for its tick of (.+)$', 1), seq,
           NULL
      FROM journal WHERE starts_with(message, 'Made by schedule ' || ? || ' for ')
    UNION ALL
    SELECT 'logged', job_id, regexp_extract(message, '^Job (\d+) ', 1)::BIGINT,
           regexp_extract(message, ' for its tick of (.+)$', 1), seq, NULL
      FROM schedule_log WHERE schedule = ? AND regexp_matches(message, '^Job \d+ made for ')
    UNION ALL
    SELECT 'schedule', last_job_id, NULL, NULL, NULL, epoch(next_run_at)
      FROM schedules WHERE name = ?
"""


@dataclass
class Facts:
    """A schedule's jobs, their ticks (from the journal and from the schedule's log), its
    last job and its next run, as one snapshot holds them."""

    jobs: list[int]
    made: list[tuple[int, str, int]]  # (job, tick, journal seq)
    logged: list[tuple[int, int, str]]  # (job named in the line, its job_id, tick)
    last_job_id: int | None
    next_run_at: float | None

    @classmethod
    def read(cls, con, name: str = NAME) -> Facts:
        """From a DuckDB connection, or a client (its ``sql``)."""
        params = [name] * 4
        if isinstance(con, jobobs.Client):
            rows = [tuple(None if pd.isna(v) else v for v in row)
                    for row in con.sql(FACTS, params).itertuples(index=False, name=None)]
        else:
            rows = con.execute(FACTS, params).fetchall()
        facts = cls(sorted(r[1] for r in rows if r[0] == "job"),
                    [(r[1], r[3], r[4]) for r in rows if r[0] == "made"],
                    [(r[2], r[1], r[3]) for r in rows if r[0] == "logged"], None, None)
        for row in rows:
            if row[0] == "schedule":
                facts.last_job_id = None if row[1] is None else int(row[1])
                facts.next_run_at = None if row[5] is None else float(row[5])
        return facts

    def by_tick(self) -> dict[str, list[int]]:
        """Each tick's jobs, once checked that the journal, the schedule's log, the jobs
        and the schedule's row agree."""
        made = {job_id: tick for job_id, tick, _ in self.made}
        assert len(made) == len(self.made), f"a job made twice: {self.made}"
        assert all(seq == 1 for _, _, seq in self.made), f"not a first line: {self.made}"
        assert sorted(made) == self.jobs, (
            f"the schedule's jobs {self.jobs} and the jobs its journal lines say it made "
            f"{sorted(made)} differ")
        assert all(number == job_id for number, job_id, _ in self.logged), self.logged
        logged = {job_id: tick for _, job_id, tick in self.logged}
        assert len(logged) == len(self.logged), f"a job logged twice: {self.logged}"
        assert logged == made, f"the schedule's log {logged} and the journal {made} differ"
        assert self.last_job_id == (self.jobs[-1] if self.jobs else None), (
            f"last_job_id {self.last_job_id}, newest job {self.jobs[-1:]}")
        ticks: dict[str, list[int]] = {}
        for job_id, tick in sorted(made.items()):
            ticks.setdefault(tick, []).append(job_id)
        doubled = {tick: ids for tick, ids in ticks.items() if len(ids) > 1}
        assert not doubled, f"ticks with two jobs: {doubled}"
        return ticks


def _read_file(db: str) -> Facts:
    """What the file holds, with no runtime open on it."""
    con = duckdb.connect(db, read_only=True)
    try:
        return Facts.read(con)
    finally:
        con.close()


def _child(db: str, mode: str, gate: str) -> str:
    """Run schedule_child.py until it kills itself; its output."""
    child = subprocess.run(
        [sys.executable, str(TESTS / "schedule_child.py"), db, mode, str(START), str(EVERY),
         "jobs:blocked", gate], capture_output=True, text=True, timeout=120, env=env())
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stdout,
                                                 child.stderr)
    return child.stdout


class Reopened:
    """A runtime on the child's file, running its schedules, its clock where the child's
    stopped; ``facts`` flushes and reads."""

    def __init__(self, db: str):
        self.now = START + EVERY + 1
        self.rt = jobobs.Runtime(db, workers=2, run_schedules=True, clock=lambda: self.now,
                                 handle_signals=False)

    def facts(self) -> Facts:
        self.rt.flush()
        return Facts.read(self.rt.store.reader())

    def log(self) -> list[str]:
        self.rt.flush()
        return [m for (m,) in self.rt.store.reader().execute(
            "SELECT message FROM schedule_log WHERE schedule = ? ORDER BY seq",
            [NAME]).fetchall()]

    def next_interval(self, gate: str) -> Facts:
        """Move the clock one interval on: exactly one more job, for the next tick."""
        jobs.gate(gate).set()
        before = self.facts()
        self.rt.wait(before.jobs[-1], timeout=60)
        self.now += EVERY
        self.rt.loop.wake()
        wait_until(lambda: len(self.facts().jobs) > len(before.jobs), 60,
                   message="the next tick's job")
        self.rt.run_until_idle(60)
        return self.facts()


def test_a_tick_committed_before_the_kill_is_kept_once(tmp_path):
    db, gate = str(tmp_path / "jobs.duckdb"), uuid.uuid4().hex
    job_id = int(_child(db, "committed", gate).split()[-1])
    left = _read_file(db)
    assert left.by_tick() == {FIRST: [job_id]}
    assert left.next_run_at == START + 2 * EVERY

    reopened = Reopened(db)
    try:
        facts = reopened.facts()  # opened at the same moment: nothing is due
        assert facts.by_tick() == {FIRST: [job_id]}
        assert facts.next_run_at == START + 2 * EVERY
        # the run the kill cut short is resumed, not made again
        wait_for_status(reopened.rt, job_id, Status.RUNNING, timeout=60)
        assert (f"Job {job_id} was shut down by a stop; it resumes from its "
                "checkpoint") in reopened.log()
        assert reopened.facts().by_tick() == {FIRST: [job_id]}

        facts = reopened.next_interval(gate)
        assert facts.by_tick() == {FIRST: [job_id], SECOND: [facts.jobs[-1]]}
        assert facts.next_run_at == START + 3 * EVERY
    finally:
        reopened.rt.close()


def test_a_tick_killed_before_its_flush_runs_once_at_reopen(tmp_path):
    db, gate = str(tmp_path / "jobs.duckdb"), uuid.uuid4().hex
    assert "killed in the flush" in _child(db, "unflushed", gate)
    left = _read_file(db)
    assert left.by_tick() == {}  # no job, and the schedule as it was added
    assert left.next_run_at == START + EVERY

    reopened = Reopened(db)
    try:
        facts = reopened.facts()  # the tick is due: it runs once, at reopen
        assert facts.by_tick() == {FIRST: facts.jobs}
        assert len(facts.jobs) == 1
        assert facts.next_run_at == START + 2 * EVERY
        assert not [m for m in reopened.log() if "could not" in m or "missed" in m]

        facts = reopened.next_interval(gate)
        assert facts.by_tick() == {FIRST: facts.jobs[:1], SECOND: facts.jobs[1:]}
        assert len(facts.jobs) == 2
        assert facts.next_run_at == START + 3 * EVERY
    finally:
        reopened.rt.close()


def _watch(client, seconds: float, seen: set[int]) -> Facts:
    """Read the schedule's facts (checked) for a while, as any client would; the jobs
    seen are added to ``seen``."""
    deadline = time.monotonic() + seconds
    while True:
        facts = Facts.read(client)
        facts.by_tick()
        seen.update(facts.jobs)
        if time.monotonic() >= deadline:
            return facts
        time.sleep(0.05)


def _kept(facts: Facts, seen: set[int], when: str) -> None:
    facts.by_tick()
    lost = seen - set(facts.jobs)
    assert not lost, f"{when}: jobs made before the kill are gone: {sorted(lost)}"
    seen.update(facts.jobs)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_served_schedule_through_kill_minus_nine_again_and_again(tmp_path):
    kills = int(os.environ.get("JOBOBS_SCHEDULE_KILLS", "7"))
    seed = os.environ.get("JOBOBS_SEED", str(time.time_ns()))
    print(f"JOBOBS_SEED={seed}")  # shown if the test fails: run it again with it
    rng = random.Random(seed)
    db = str(tmp_path / "jobs.duckdb")
    port, quack_port = free_port(), free_port()
    seen: set[int] = set()
    server = Server(db, port=port, quack_port=quack_port, workers=2).wait_ready()
    with jobobs.connect(db) as client:
        client.schedule(NAME, python_spec("jobs:noop"), every=1)
    for kill in range(1, kills + 1):
        try:
            with jobobs.connect(db) as client:
                _kept(Facts.read(client), seen, f"before kill {kill}")
                _watch(client, rng.uniform(0.2, 3.0), seen)
        finally:
            server.kill()
        _kept(_read_file(db), seen, f"kill {kill}")
        server = Server(db, port=port, quack_port=quack_port, workers=2).wait_ready()
    try:
        with jobobs.connect(db) as client:  # the schedule still ticks, once a tick
            _kept(Facts.read(client), seen, f"the restart after kill {kills}")
            more = len(seen) + 3
            wait_until(lambda: len(_watch(client, 0, seen).jobs) >= more, 120,
                       message="three more ticks")
    finally:
        code = server.stop(signal.SIGTERM)
    assert code == 0, server.output()
    final = _read_file(db)
    _kept(final, seen, "the end")
    assert len(final.by_tick()) == len(final.jobs) > kills
