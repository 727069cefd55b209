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

import os
import time
from datetime import UTC, datetime

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
