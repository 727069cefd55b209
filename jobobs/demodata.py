"""Realistic input files for the demo, written by DuckDB in seconds.

- ``customers.csv``: 20,000 customers, about 1% bad lines of several kinds (a date that
  is not a date, a credit limit that is not a number, a missing column, an extra column);
- ``orders.csv``: 3,000,000 orders, big enough to watch the progress bar move and to
  pause the import;
- ``orders_2026-11-bad.csv``: a monthly file whose amounts went wrong (about 12% bad
  lines), which crosses the import's reject threshold;
- ``events.json``: 200,000 click events as newline-delimited JSON;
- ``signups.csv``: the signups of the last five minutes, as a web API would give them
  (``signups``), rewritten by each run of the demo's scheduled ``fetch signups`` job.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import UTC, datetime, timedelta

import duckdb

from jobobs.db import files
from jobobs.db.sql import literal

CUSTOMERS = 20_000
ORDERS = 3_000_000
EVENTS = 200_000
SIGNUPS_SINCE = 1_767_225_600  # 2026-01-01 UTC: signup 0
SIGNUP_EVERY = 2  # seconds between two signups in the feed
SIGNUPS_KEPT = 150  # the feed's file holds the last five minutes: it never grows
COUNTRIES = ("FR", "DE", "US", "JP", "BR", "IN", "GB", "ES")
SIGNUP_COLUMNS = {"id": "BIGINT", "name": "VARCHAR", "email": "VARCHAR", "country": "VARCHAR",
                  "plan": "VARCHAR", "seats": "INTEGER", "signed_up_at": "TIMESTAMP"}


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: str, options: str) -> None:
    with files.replacing(path) as temporary:
        con.execute(f"COPY ({query}) TO {literal(temporary)} ({options}, USE_TMP_FILE false)")


def generate(folder: str, *, scale: float = 1.0) -> dict[str, str]:
    """Write the demo's files into ``folder`` (made if missing); return their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = {name: os.path.join(folder, name) for name in
             ("customers.csv", "orders.csv", "orders_2026-11-bad.csv", "events.json")}
    customers, orders, events = (max(100, int(n * scale)) for n in (CUSTOMERS, ORDERS, EVENTS))
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    countries = "['FR', 'DE', 'US', 'JP', 'BR', 'IN', 'GB', 'ES']"
    _copy(con, f"""
        SELECT i AS id, 'Customer ' || i AS name, 'customer' || i || '@example.com' AS email,
               {countries}[i % 8 + 1] AS country,
               (DATE '2020-01-01' + (i % 2000)::INTEGER)::VARCHAR AS signup_date,
               (1000 + (i * 37) % 9000)::VARCHAR AS credit_limit
        FROM range(1, {customers} + 1) t(i)""", paths["customers.csv"], "HEADER")
    # bad lines of several kinds, appended as text so they stay bad
    with open(paths["customers.csv"], "a", encoding="utf-8") as out:
        for n in range(customers // 100):
            i = customers + n + 1
            kind = n % 4
            if kind == 0:
                out.write(f"{i},Customer {i},c{i}@example.com,FR,31/02/2021,1200\n")
            elif kind == 1:
                out.write(f"{i},Customer {i},c{i}@example.com,DE,2021-03-04,lots\n")
            elif kind == 2:
                out.write(f"{i},Customer {i},c{i}@example.com\n")
            else:
                out.write(f"{i},Customer {i},c{i}@example.com,US,2021-03-04,900,extra\n")
    _copy(con, f"""
        SELECT i AS order_id, 1 + i % {customers} AS customer_id,
               TIMESTAMP '2026-01-01' + to_seconds(i * 7) AS ordered_at,
               round(5 + (i * 7919) % 50000 / 100.0, 2) AS amount,
               ['card', 'transfer', 'cash'][i % 3 + 1] AS payment
        FROM range(1, {orders} + 1) t(i)""", paths["orders.csv"], "HEADER")
    _copy(con, f"""
        SELECT i AS order_id, 1 + i % {customers} AS customer_id,
               TIMESTAMP '2026-11-01' + to_seconds(i * 60) AS ordered_at,
               CASE WHEN i % 8 = 0 THEN 'n/a' ELSE (5 + i % 500)::VARCHAR END AS amount,
               'card' AS payment
        FROM range(1, {max(100, orders // 100)} + 1) t(i)""",
          paths["orders_2026-11-bad.csv"], "HEADER")
    _copy(con, f"""
        SELECT i AS event_id, 1 + i % {customers} AS customer_id,
               ['view', 'click', 'add_to_cart', 'purchase'][i % 4 + 1] AS action,
               TIMESTAMP '2026-11-01' + to_milliseconds(i * 900) AS at
        FROM range(1, {events} + 1) t(i)""", paths["events.json"], "FORMAT json")
    con.close()
    return paths


def signups(folder: str, *, now: float | None = None) -> str:
    """Write ``signups.csv`` into ``folder``: the last ``SIGNUPS_KEPT`` signups up to
    ``now`` (one every ``SIGNUP_EVERY`` seconds, numbered by their time, so each new file
    has the newest and drops the oldest), with about 3% bad lines of three kinds (a date
    that is not a date, seats that are not a number, missing columns). The file is
    replaced in one step, so an import never reads half of it. Returns its path."""
    path = os.path.join(folder, "signups.csv")
    last = int(((time.time() if now is None else now) - SIGNUPS_SINCE) // SIGNUP_EVERY)
    lines = [",".join(SIGNUP_COLUMNS)]
    for i in range(last - SIGNUPS_KEPT + 1, last + 1):
        when = datetime.fromtimestamp(SIGNUPS_SINCE + i * SIGNUP_EVERY, UTC)
        at = when.strftime("%d/%m/%Y %Hh%M" if i % 100 == 7 else "%Y-%m-%d %H:%M:%S")
        plan = ("free", "pro", "team")[i % 3]
        seats = "a dozen" if i % 100 == 41 else str({"free": 1, "pro": 1 + i % 4,
                                                     "team": 5 + i % 20}[plan])
        who = f"{i},Signup {i},signup{i}@example.com"
        lines.append(who if i % 100 == 73 else
                     f"{who},{COUNTRIES[i % len(COUNTRIES)]},{plan},{seats},{at}")
    with files.replacing(path) as temporary, open(temporary, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return path


# The demo's history: each job name's kind, runs a day, typical duration (s), rows per run,
# the schedule that runs it (None: run by hand) and its errors, for ``history``.
HISTORY_DAYS = 30
HISTORY_SEED = 2026
_TOO_MANY = "TooManyRejects: too many rejects: {n} (the limit is {limit})"
RHYTHM = {
    # name: (kind, runs a day, typical seconds, rows, schedule, failure rate, errors)
    "fetch signups": ("python", 24, 9.0, 150, "fetch signups", 0.06, (
        "TimeoutError: api.example.com did not answer within 30 s (page {page} of 12)",
        "ConnectionError: api.example.com refused the connection: 503 Service Unavailable")),
    "import signups": ("import", 24, 1.8, 150, "import signups", 0.02, (_TOO_MANY,)),
    "export new signups": ("export", 12, 1.2, 140, "export new signups", 0.01, (
        "PermissionError: [Errno 13] Permission denied: '/srv/exports/new_signups.csv'",)),
    "signups by country": ("export", 4, 0.7, 24, "signups by country", 0.0, ()),
    "sync-crm": ("python", 8, 14.0, 30, None, 0.04, (
        "HTTPError: 429 Too Many Requests from crm.example.com (retry after 60 s)",)),
    "score-customers": ("python", 2, 48.0, 20_000, None, 0.03, (
        "duckdb.OutOfMemoryException: Out of Memory Error: failed to allocate data of "
        "size 256.0 MiB (6.2 GiB/6.4 GiB used)",)),
    "load-events": ("python", 4, 26.0, 5000, None, 0.12, (_TOO_MANY,)),
    "refresh-aggregates": ("python", 1, 95.0, 10, None, 0.1, (
        "RuntimeError: Catalog Error: table daily_totals does not exist",)),
    "import customers": ("import", 1, 6.5, 20_200, None, 0.0, ()),
    "import orders": ("import", 1, 140.0, 3_000_000, None, 0.04, (
        'IOException: IO Error: No files found that match the pattern "/srv/data/orders.csv"',)),
    "import events": ("import", 4, 21.0, 200_000, None, 0.0, ()),
    "export customers by country": ("export", 1, 3.2, 8, None, 0.0, ()),
    "export orders": ("export", 1, 36.0, 3_000_000, None, 0.03, (
        "PermissionError: [Errno 13] Permission denied: '/srv/exports/orders_2026.csv.gz'",)),
}
# (name, its run number, how many times slower than usual): a few runs to look into
SLOW = (("import orders", 26, 4.2), ("sync-crm", 150, 3.4), ("fetch signups", 500, 5.5),
        ("refresh-aggregates", 20, 2.8))
REJECTS = {  # name: (share of rows rejected, [(reason, column, raw, message)])
    "import customers": (0.01, [
        ("cast error", "signup_date", "{i},Customer {i},c{i}@example.com,FR,31/02/2021,1200",
         'Error when converting column "signup_date". Could not convert string '
         '"31/02/2021" to \'DATE\''),
        ("cast error", "credit_limit", "{i},Customer {i},c{i}@example.com,DE,2021-03-04,lots",
         'Error when converting column "credit_limit". Could not convert string "lots" '
         'to INTEGER'),
        ("missing columns", "country", "{i},Customer {i},c{i}@example.com",
         "Expected Number of Columns: 6 Found: 3"),
        ("too many columns", None, "{i},Customer {i},c{i}@example.com,US,2021-03-04,900,x",
         "Expected Number of Columns: 6 Found: 7")]),
    "import signups": (0.03, [
        ("cast error", "signed_up_at", "{i},Signup {i},signup{i}@example.com,FR,pro,2,"
         "01/12/2026 09h14", 'Error when converting column "signed_up_at". Could not '
         'convert string "01/12/2026 09h14" to \'TIMESTAMP\''),
        ("cast error", "seats", "{i},Signup {i},signup{i}@example.com,DE,team,a dozen,"
         "2026-12-01 09:14:00", 'Error when converting column "seats". Could not convert '
         'string "a dozen" to INT32'),
        ("missing columns", "country", "{i},Signup {i},signup{i}@example.com",
         "Expected Number of Columns: 7 Found: 3")]),
    "load-events": (0.004, [
        ("missing user id", "user_id", "{i},,click", "the event has no user id")]),
}
_FIRST_LINES = {
    "python": "Job started (run 1) on demo-host pid 4242 jobobs-worker-{w}",
    "import": "Reading {source}",
    "export": "Writing {target}",
}


def history(db: str, *, days: int = HISTORY_DAYS, now: datetime | None = None,
            seed: int = HISTORY_SEED) -> int:
    """Write ``days`` of history of the demo's job names into ``db`` (jobobs' schema, made
    if missing), unless it has some already (a job created more than a day ago): a few
    thousand runs with their transitions, journal lines and rejects, in one transaction,
    deterministic for a ``seed`` and ``now``. Durations follow each name's typical one with
    noise and a daily rhythm (slower in working hours); some runs fail with their name's
    errors, a few are canceled, and a few (``SLOW``) are much slower than usual. Its ids
    come before any job the demo submits next. Returns the number of jobs written."""
    import random

    import pandas as pd

    from jobobs.db.store import Store

    Store(db).close()  # the schema, migrated
    now = (now or datetime.now(UTC)).replace(tzinfo=None, microsecond=0)
    con = duckdb.connect(db)
    try:
        if con.execute("SELECT count(*) FROM jobs WHERE created_at < ?",
                       [now - timedelta(days=1)]).fetchone()[0]:
            return 0
        first = con.execute("SELECT coalesce(max(id), 0) FROM jobs").fetchone()[0] + 1
        tables = _history(random.Random(seed), now, days, first)
        frames = {name: pd.DataFrame(rows) for name, rows in tables.items()}
        con.execute("BEGIN TRANSACTION")
        for table, frame in frames.items():
            con.register("frame", frame)
            con.execute(f"INSERT INTO {table} ({', '.join(frame.columns)}) "
                        f"SELECT * FROM frame")
            con.unregister("frame")
        con.execute("COMMIT")
        return len(frames["jobs"])
    finally:
        con.close()


def _history(rng, now: datetime, days: int, first: int) -> dict[str, list[dict]]:
    """The rows of ``history``: jobs, job_transitions, journal and rejects."""
    start = now - timedelta(days=days)
    planned = []
    for name, (_, per_day, *_) in RHYTHM.items():
        every = 86_400 / per_day
        offset = rng.uniform(60, every / 2)
        at = start + timedelta(seconds=offset)
        while at < now - timedelta(minutes=10):
            planned.append((at + timedelta(seconds=rng.uniform(0, 20)), name))
            at += timedelta(seconds=every)
    planned.sort()
    slow = {(name, n): factor for name, n, factor in SLOW}
    tables: dict[str, list[dict]] = {"jobs": [], "job_transitions": [], "journal": [],
                                     "rejects": []}
    runs: dict[str, int] = {}
    for number, (created, name) in enumerate(planned):
        runs[name] = runs.get(name, 0) + 1
        _run(rng, tables, first + number, name, created, slow.get((name, runs[name])))
    return tables


def _run(rng, tables: dict[str, list[dict]], job_id: int, name: str, created: datetime,
         slow: float | None) -> None:
    kind, _, typical, rows, schedule, failure_rate, errors = RHYTHM[name]
    hour = created.hour + created.minute / 60
    busy = 1 + 0.45 * math.exp(-((hour - 14) / 3.5) ** 2)  # working hours load the servers
    seconds = typical * busy * rng.lognormvariate(0, 0.18) * (slow or 1)
    fate = rng.random()
    status = ("failed" if fate < failure_rate and not slow else
              "canceled" if fate > 0.995 and kind == "python" and not slow else "finished")
    if status != "finished":
        seconds *= rng.uniform(0.2, 0.8)
    started = created + timedelta(seconds=rng.uniform(0.01, 0.4))
    finished = started + timedelta(seconds=seconds)
    total = max(1, int(rows * rng.uniform(0.97, 1.03)))
    processed = total if status == "finished" else int(total * (finished - started) /
                                                        timedelta(seconds=seconds / 0.6))
    share, kinds = REJECTS.get(name, (0.0, []))
    rejected = min(processed, int(processed * share * rng.uniform(0.6, 1.4)))
    error, limit = None, None
    if status == "failed":
        error = rng.choice(errors)
        if error is _TOO_MANY:
            limit = 100 if name == "load-events" else max(1, total // 10)
            rejected = limit + 1
            error = error.format(n=rejected, limit=limit)
        error = error.format(page=rng.randint(3, 11))
    warned = (name == "sync-crm" and status == "finished") or (
        name == "fetch signups" and status == "finished" and rng.random() < 1 / 6)
    actor = "scheduler" if schedule else rng.choice(("alice", "bob", "cron@etl-01"))
    worker = f"jobobs-worker-{job_id % 3}"
    steps = [("editing", None, actor, "created", created),
             ("queued", "editing", actor, "submitted", created),
             ("running", "queued", "runtime", None, started)]
    if status == "canceled":
        steps.append(("canceling", "running", "alice", "cancel requested",
                      finished - timedelta(seconds=0.2)))
    steps.append((status, steps[-1][0], "runtime", None, finished))
    for seq, (to, frm, who, why, at) in enumerate(steps, 1):
        tables["job_transitions"].append({
            "job_id": job_id, "seq": seq, "changed_at": at, "from_status": frm,
            "to_status": to, "actor": who, "reason": why})
    lines = [("INFO", None, f"Job started (run 1) on demo-host pid 4242 {worker}")]
    if kind == "import":
        lines += [("INFO", None, "--- Read the input ---"),
                  ("INFO", None, f"Reading /srv/data/{name.split()[-1]}.csv"),
                  ("INFO", None, f"Starting import of {total:,} records")]
    elif kind == "export":
        lines += [("INFO", None, f"Writing /srv/exports/{name.replace(' ', '_')}"),
                  ("INFO", None, f"{processed:,} rows written")]
    else:
        lines += [("INFO", None, f"--- {name} ---"),
                  ("INFO", None, f"Processing {total:,} records")]
    if warned:
        lines.append(("WARNING", "XDT-320029" if name == "sync-crm" else None,
                      "3 contacts had no e-mail address; they were skipped"
                      if name == "sync-crm" else
                      "2 signups had no country; they are kept without one"))
    if status == "failed":
        lines.append(("ERROR", None, "Traceback (most recent call last):\n"
                      f'  File "/srv/jobs/{name.replace(" ", "_")}.py", line '
                      f"{40 + job_id % 60}, in run\n    step(ctx)\n{error}"))
    elif status == "canceled":
        lines.append(("INFO", None, "Canceled at a checkpoint"))
    else:
        lines.append(("INFO", None, f"End of job ({processed:,} processed in "
                      f"{seconds:.1f}s)"))
    step = (finished - started) / len(lines)
    for seq, (level, code, message) in enumerate(lines, 1):
        tables["journal"].append({"job_id": job_id, "seq": seq,
                                  "logged_at": started + step * (seq - 1), "level": level,
                                  "code": code, "message": message})
    source = f"/srv/data/{name.split()[-1]}.csv"
    for seq in range(1, rejected + 1):
        reason, column, raw, message = kinds[rng.randrange(len(kinds))] if kinds else (
            "too many rejects", None, "", "")
        line = rng.randint(2, total + 1)
        tables["rejects"].append({
            "job_id": job_id, "seq": seq, "rejected_at": started + step, "kind": "error",
            "source": source, "line_no": line, "column_name": column,
            "raw": raw.format(i=line), "reason": reason, "message": message})
    tables["jobs"].append({
        "id": job_id, "name": name, "kind": kind, "spec": json.dumps(_spec(name, kind)),
        "status": status, "prev_status": steps[-2][0], "transition_seq": len(steps),
        "has_warning": warned, "created_at": created, "queued_at": created,
        "started_at": started, "finished_at": finished, "updated_at": finished,
        "run_count": 1, "active_seconds": seconds, "total": total, "processed": processed,
        "succeeded": processed - rejected, "rejected": rejected, "warnings": int(warned),
        "duplicates": 0, "progress_current": float(processed), "progress_total": float(total),
        "max_rejects": limit, "error": error, "created_by": actor, "runtime_id": "history",
        "host": "demo-host", "pid": 4242, "worker": worker, "doubles": 0,
        "schedule": schedule, "retries": 2 if name == "fetch signups" else 0, "retried": 0})


def _spec(name: str, kind: str) -> dict:
    """A job spec as the demo's own would read, for a job of the history."""
    if kind == "python":
        function = {"score-customers": "score_customers", "sync-crm": "sync_crm",
                    "load-events": "load_events", "refresh-aggregates": "refresh_aggregates",
                    "fetch signups": "fetch_signups"}[name]
        return {"function": f"jobobs.demo:{function}", "args": [], "kwargs": {}}
    module = "importing:import_job" if kind == "import" else "exporting:export_job"
    return {"function": f"jobobs.kinds.{module}", "args": [{"name": name}], "kwargs": {}}
