"""kill -9 of the server, again and again, at random moments, while three imports, an
export and a Python job run. After each restart the database opens, the interrupted jobs
are ``shutdown`` with a journal line saying why, and what any client saw before the kill
is still there; Start resumes them. At the end every import holds exactly its source's
rows (none lost, none twice), the export file is complete, and no file was ever partial
under its target's name.

``JOBOBS_KILLS`` sets the number of kills (default 20).
"""

import os
import random
import signal
import time

import duckdb
import pytest
from serving import Server, free_port

import jobobs

pytestmark = pytest.mark.slow

ROWS = 60_000
EXPORTED = 200_000


def _sources(folder):
    paths = []
    for n in range(3):
        path = folder / f"part{n}.csv"
        duckdb.sql(f"""COPY (SELECT {n} * {ROWS} + range AS id, 'name ' || range AS name
                             FROM range({ROWS})) TO '{path}' (HEADER)""")
        paths.append(path)
    return paths


def _submit(client, sources, export_to):
    columns = {"id": "BIGINT", "name": "VARCHAR"}
    return [
        client.submit_import(str(sources[0]), "part0", columns=columns, key=["id"],
                             on_failure="keep", chunk_rows=4000, name="import part0"),
        client.submit_import(str(sources[1]), "part1", columns=columns, key=["id"],
                             on_failure="keep", chunk_rows=7000, name="import part1"),
        client.submit_import(str(sources[2]), "part2", columns=columns,
                             name="import part2 (all or nothing)"),
        client.submit_export(str(export_to), name="export range",
                             query=f"SELECT range AS n FROM range({EXPORTED})"),
        client.submit("jobs:talker", 200, 0.02, name="talker"),
    ]


def _observe(client, ids, seconds, lines, rejects):
    """Read what the server acknowledges for a while (as any client would)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for job_id in ids:
            for row in client.journal(job_id, limit=100_000).itertuples():
                lines.add((job_id, row.seq, row.message))
            for row in client.rejects(job_id).itertuples():
                rejects.add((job_id, row.line_no, row.raw))
        time.sleep(0.1)


def _complete(path):
    if not path.exists():
        return True
    return duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchone()[0] == EXPORTED


@pytest.mark.timeout(600)
def test_kill_minus_nine_again_and_again(tmp_path):
    kills = int(os.environ.get("JOBOBS_KILLS", "20"))
    rng = random.Random(os.environ.get("JOBOBS_SEED", str(time.time_ns())))
    sources = _sources(tmp_path)
    export_to = tmp_path / "out" / "range.csv"
    export_to.parent.mkdir()
    db = str(tmp_path / "jobs.duckdb")
    port, quack_port = free_port(), free_port()
    lines, rejects, ids = set(), set(), []
    started = time.monotonic()
    for kill in range(kills + 1):
        server = Server(db, port=port, quack_port=quack_port, workers=5).wait_ready()
        with jobobs.connect(db) as client:
            if not ids:
                ids = _submit(client, sources, export_to)
            else:
                present = {(row.seq, row.message) for job_id in ids
                           for row in client.journal(job_id, limit=100_000).itertuples()}
                missing = [line for line in lines if line[1:] not in present]
                assert not missing, f"kill {kill}: acknowledged lines lost: {missing[:3]}"
                for job_id in ids:
                    info = client.info(job_id)
                    assert info.status.value in ("shutdown", "finished"), (kill, info)
                    if info.status.value == "shutdown":
                        messages = client.journal(job_id, limit=100_000)["message"]
                        assert messages.str.startswith("Recovered").any(), kill
                        client.start(job_id)
            assert _complete(export_to), f"kill {kill}: a partial export under its name"
            if kill == kills:
                for job_id in ids:
                    info = client.wait(job_id, progress=False, timeout=120)
                    assert info.status.value == "finished", info
                _observe(client, ids, 0, lines, rejects)
                break
            _observe(client, ids, rng.uniform(0.2, 2.5), lines, rejects)
        server.kill()
    try:
        with jobobs.connect(db) as client:
            for n in range(3):
                count, distinct, low, high = client.sql(
                    f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM part{n}"
                ).iloc[0]
                assert (count, distinct, low, high) == (ROWS, ROWS, n * ROWS,
                                                        (n + 1) * ROWS - 1), n
            talker = client.info(ids[4])
            assert (talker.processed, talker.rejected) == (200, 20)
            final = {(job_id, row.line_no, row.raw) for job_id in ids
                     for row in client.rejects(job_id).itertuples()}
            assert rejects <= final, "an acknowledged reject is gone"
            assert len(client.rejects(ids[4])) == 20  # each once
        assert _complete(export_to) and export_to.exists()
        assert not [p for p in export_to.parent.iterdir() if p != export_to]
    finally:
        assert server.stop(signal.SIGTERM) == 0, server.output()
    print(f"{kills} kills in {time.monotonic() - started:.0f} s")
