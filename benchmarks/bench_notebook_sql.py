"""SQL cells: ``%%jobobs_sql`` against JupySQL's ``%%sql``, with raw DuckDB as the reference,
on a generated history (by default 100,000 jobs):

    python benchmarks/bench_notebook_sql.py [--jobs 100000] [--samples 30] [--rounds 3]

The same three queries (the 50 newest jobs; one job name's failures, the name a notebook
variable; runs and failures per job name) run as cells of a real IPython shell: through
``%%jobobs_sql`` on the file and through ``jobobs serve``, and through JupySQL on the file,
by duckdb-engine (SQLAlchemy) and by a DuckDB connection, in a few rounds (the machine's
load drifts). Prints each cell's median time and its ratio to the query run on a DuckDB
connection directly; then, with the server running, whether JupySQL reaches the history.

JupySQL is not a dependency of jobobs (``pip install jupysql duckdb-engine``): without it the
JupySQL rows are left out. Its telemetry is turned off here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

import duckdb
from bench_dashboard import generate
from figures import timed
from serving import Server

from jobobs.access import sqlmagic
from jobobs.model.errors import one_line

# the queries in DuckDB's own form; each cell writes its placeholder for the name its way
QUERIES = {
    "50 newest": "SELECT id, name, status, created_at, finished_at FROM jobs "
                 "ORDER BY id DESC LIMIT 50",
    "a name's failures": "SELECT id, finished_at, error FROM jobs WHERE name = {name} "
                         "AND status = 'failed' ORDER BY id DESC LIMIT 50",
    "per name": "SELECT name, count(*) AS runs, count(*) FILTER (WHERE status = 'failed') "
                "AS failed, avg(active_seconds) AS mean_s FROM jobs GROUP BY name "
                "ORDER BY failed DESC, name",
}
NAME = "job-7"


def shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    made = InteractiveShell(config=config)
    made.user_ns["name"] = NAME
    return made



def cells(ipython: Any, head: str, placeholder: str, samples: int) -> dict[str, list[float]]:
    """Each query as a cell ``head`` + query, run silently (no display: the same DataFrame's
    for every magic); its times."""
    found = {}
    for label, query in QUERIES.items():
        source = f"{head}\n{query.format(name=placeholder)}"

        def run(source: str = source) -> None:
            result = ipython.run_cell(source, silent=True)
            if not result.success:
                raise SystemExit(f"the cell failed: {source}\n{result.error_in_exec}")

        found[label] = timed(run, samples, warm=2)
    return found


def raw(db: str, samples: int) -> dict[str, list[float]]:
    con = duckdb.connect(db)
    try:
        return {label: timed(lambda q=query: con.execute(q.format(name="?"),
                                                          [NAME] if "{name}" in q else [])
                             .df(), samples, warm=2)
                for label, query in QUERIES.items()}
    finally:
        con.close()


def jobobs_cells(db: str, samples: int) -> dict[str, list[float]]:
    ipython = shell()
    magic = sqlmagic.register(ipython)
    try:
        return cells(ipython, f"%%jobobs_sql --db {db}", "$name", samples)
    finally:
        magic.close()
        ipython.cleanup()


def jupysql() -> bool:
    os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")
    os.environ.setdefault("PLOOMBER_VERSION_CHECK_DISABLED", "true")
    try:
        import duckdb_engine  # noqa: F401
        import sql  # noqa: F401
    except ImportError:
        return False
    return True


def jupysql_cells(db: str, samples: int, native: bool) -> dict[str, list[float]]:
    """``%%sql`` cells returning DataFrames (``autopandas``: JupySQL's default is its own
    ResultSet); the name through its ``{{name}}`` template, quoted by hand."""
    ipython = shell()
    ipython.run_line_magic("load_ext", "sql")
    for setting in ("SqlMagic.autopandas = True", "SqlMagic.displaycon = False",
                    "SqlMagic.feedback = 0"):
        ipython.run_line_magic("config", setting)
    if native:
        ipython.user_ns["native"] = duckdb.connect(db)
    connected = ipython.run_cell("%sql native" if native else f"%sql duckdb:///{db}",
                                 silent=True)
    if not connected.success:
        raise SystemExit(f"JupySQL did not connect: {connected.error_in_exec}")
    try:
        return cells(ipython, "%%sql", "'{{name}}'", samples)
    finally:
        from sql.connection import ConnectionManager

        ConnectionManager.close_all()  # engines disposed: the file is free again
        if native:
            ipython.user_ns["native"].close()
        ipython.cleanup()


def jupysql_beside_the_server(db: str) -> str:
    """What JupySQL says when it opens the file that ``jobobs serve`` owns."""
    ipython = shell()
    ipython.run_line_magic("load_ext", "sql")
    result = ipython.run_cell(f"%sql duckdb:///{db}\n%sql SELECT count(*) FROM jobs",
                              silent=True)
    from sql.connection import ConnectionManager

    ConnectionManager.close_all()
    ipython.cleanup()
    if result.success:
        return "it opened the file"
    said = one_line(str(result.error_in_exec).split("Original error message")[-1].strip(": \n"))
    return said.split(" See also")[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="jobobs-bench-notebook-sql-"))
    os.environ["IPYTHONDIR"] = str(folder / "ipython")
    db = str(folder / "history.duckdb")
    started = time.perf_counter()
    generate(db, args.jobs, 2, max(1, args.jobs // 100))
    print(f"generated {args.jobs:,} jobs in {time.perf_counter() - started:.1f} s; median of "
          f"{args.rounds} rounds of {args.samples} runs of each cell, in a real IPython shell")

    with_jupysql = jupysql()
    cases: dict[str, Any] = {
        "DuckDB connection, no cell (reference)": lambda: raw(db, args.samples),
        "%%jobobs_sql, the file": lambda: jobobs_cells(db, args.samples)}
    if with_jupysql:
        cases["%%sql JupySQL, duckdb-engine"] = lambda: jupysql_cells(db, args.samples, False)
        cases["%%sql JupySQL, a DuckDB connection"] = lambda: jupysql_cells(
            db, args.samples, True)
    times: dict[str, dict[str, list[float]]] = {name: {q: [] for q in QUERIES} for name in cases}
    served = "%%jobobs_sql, jobobs serve (Quack)"
    times[served] = {q: [] for q in QUERIES}
    for _ in range(args.rounds):  # one case at a time: each holds the file while it runs
        for name, case in cases.items():
            for query, found in case().items():
                times[name][query] += found
    server = Server(db, workers=1).wait_ready(timeout=120)
    try:
        for _ in range(args.rounds):
            for query, found in jobobs_cells(db, args.samples).items():
                times[served][query] += found
        beside = jupysql_beside_the_server(db) if with_jupysql else None
    finally:
        server.stop()

    reference = {query: statistics.median(found)
                 for query, found in times[next(iter(cases))].items()}
    print(f"{'cell':<40}" + "".join(f"{label:>26}" for label in QUERIES))
    for name, figures in times.items():
        medians = {query: statistics.median(found) for query, found in figures.items()}
        print(f"{name:<40}" + "".join(
            f"{medians[query]:>10.2f} ms ({medians[query] / reference[query]:>5.1f}x)   "
            for query in QUERIES))
    if with_jupysql:
        print(f"JupySQL on the file while jobobs serve runs: {beside}")
    else:
        print("JupySQL is not installed (pip install jupysql duckdb-engine): left out")


if __name__ == "__main__":
    main()
