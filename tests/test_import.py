"""Import jobs on real files: rejects from DuckDB's reader, thresholds, modes, doubles and
duplicates, formats, dry runs, and pause, cancel and resume with exact rows."""

import gzip
import json

import duckdb
import pytest

from jobobs import JobobsError, Status
from jobobs.access import queries
from jobobs.kinds import importing
from jobobs.testing import wait_for_status, wait_until

COLUMNS = {"id": "BIGINT", "name": "VARCHAR", "score": "INTEGER"}


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.fixture
def people(tmp_path):
    return write(tmp_path / "people.csv",
                 "id,name,score\n1,ann,10\n2,bob,x\n3,cy,30\n4,dan,40,extra\n5,eve\n6,fay,60\n")


def run(rt, source, table="people", **options):
    options.setdefault("columns", COLUMNS)
    return rt.wait(importing.submit(rt, source, table, **options).id, timeout=60)


def rows(rt, sql):
    return rt.store.reader().execute(sql).fetchall()


def test_bad_lines_become_rejects_with_line_column_raw_and_reason(rt, people):
    info = run(rt, people)
    assert info.status is Status.FINISHED and info.kind == "import"
    assert (info.total, info.processed, info.succeeded, info.rejected) == (6, 6, 3, 3)
    assert rows(rt, "SELECT id, name, score FROM people ORDER BY id") == [
        (1, "ann", 10), (3, "cy", 30), (6, "fay", 60)]
    rejects = queries.rejects(rt.store.reader(), info.id)
    assert list(zip(rejects.line_no, rejects.column_name.fillna("-"), rejects.reason,
                    rejects.raw)) == [
        (3, "score", "cast error", "2,bob,x"),
        (5, "-", "too many columns", "4,dan,40,extra"),
        (6, "score", "missing columns", "5,eve")]
    assert set(rejects.source) == {people} and list(rejects.seq) == [1, 2, 3]
    assert "Could not convert string" in rejects.message[0]
    journal = list(queries.journal(rt.store.reader(), info.id).message)
    assert "Starting import of 6 records" in journal
    assert any(m.startswith("End of import (6 processed, 3 imported, 3 rejected") for m in journal)
    assert rows(rt, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_jobobs%'") \
        == [(0,)]


def test_too_many_rejects_fails_and_imports_nothing(rt, people):
    info = run(rt, people, max_rejects=2)
    assert info.status is Status.FAILED
    assert info.error == "TooManyRejects: too many rejects: 3 (the limit is 2)"
    assert info.rejected == 3 and info.succeeded == 0
    assert rows(rt, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'people'") == [(0,)]
    journal = list(queries.journal(rt.store.reader(), info.id).message)
    assert "Nothing was written to people (on_failure=rollback)" in journal
    assert "Too many rejects: 3 (the limit is 2); the job stops" in journal


@pytest.mark.parametrize(("limit", "status"), [("50%", "finished"), ("49%", "failed"),
                                               (None, "finished"), (3, "finished")])
def test_reject_threshold_as_count_percent_or_none(rt, people, limit, status):
    assert run(rt, people, max_rejects=limit).status.value == status


def test_modes_append_replace_and_upsert(rt, tmp_path):
    first = write(tmp_path / "a.csv", "id,name,score\n1,ann,10\n2,bob,20\n")
    second = write(tmp_path / "b.csv", "id,name,score\n2,bobby,21\n3,cy,30\n")
    run(rt, first)
    run(rt, first)
    assert rows(rt, "SELECT count(*) FROM people") == [(4,)]
    run(rt, first, mode="replace")
    assert rows(rt, "SELECT count(*) FROM people") == [(2,)]
    info = run(rt, second, mode="upsert", key=["id"])
    assert info.duplicates == 1
    assert rows(rt, "SELECT id, name FROM people ORDER BY id") == [
        (1, "ann"), (2, "bobby"), (3, "cy")]


@pytest.mark.parametrize(("policy", "names", "rejected"), [
    ("update", ["ann2", "bob"], 0), ("ignore", ["ann", "bob"], 0),
    ("reject", ["ann", "bob"], 1)])
def test_doubles_in_the_input(rt, tmp_path, policy, names, rejected):
    source = write(tmp_path / "d.csv", "id,name,score\n1,ann,1\n2,bob,2\n1,ann2,3\n")
    info = run(rt, source, key=["id"], doubles=policy)
    assert (info.doubles, info.rejected) == (1, rejected)
    assert [n for (n,) in rows(rt, "SELECT name FROM people ORDER BY id")] == names
    if rejected:
        reject = queries.rejects(rt.store.reader(), info.id).iloc[0]
        assert reject.reason == "double" and json.loads(reject.record)["name"] == "ann2"


@pytest.mark.parametrize(("policy", "names", "rejected"), [
    ("reject", ["ann", "new"], 1), ("ignore", ["ann", "new"], 0),
    ("update", ["ann2", "new"], 0)])
def test_duplicates_against_the_target(rt, tmp_path, policy, names, rejected):
    run(rt, write(tmp_path / "a.csv", "id,name,score\n1,ann,1\n"))
    info = run(rt, write(tmp_path / "b.csv", "id,name,score\n1,ann2,2\n2,new,3\n"),
               key=["id"], duplicates=policy)
    assert (info.duplicates, info.rejected) == (1, rejected)
    assert [n for (n,) in rows(rt, "SELECT name FROM people ORDER BY id")] == names


def test_dry_run_records_rejects_and_writes_nothing(rt, people):
    info = run(rt, people, dry_run=True)
    assert info.status is Status.FINISHED and info.rejected == 3 and info.succeeded == 0
    assert rows(rt, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'people'") == [(0,)]
    assert any(m.startswith("Dry run: 3 records would be imported")
               for m in queries.journal(rt.store.reader(), info.id).message)


def test_dialects_compression_and_globs(rt, tmp_path):
    with gzip.open(tmp_path / "p1.tsv.gz", "wt") as out:
        out.write("1\tann\t10\n2\tbob\tbad\n")
    with gzip.open(tmp_path / "p2.tsv.gz", "wt") as out:
        out.write("3\tcy\t30\n")
    info = run(rt, str(tmp_path / "p*.tsv.gz"), delimiter="\t", header=False)
    assert (info.succeeded, info.rejected) == (2, 1)
    assert list(queries.rejects(rt.store.reader(), info.id).source) == [
        str(tmp_path / "p1.tsv.gz")]
    quoted = write(tmp_path / "q.csv", "id;name;score\n1;'a;b';5\n")
    run(rt, quoted, table="quoted", delimiter=";", quote="'", escape="'")
    assert rows(rt, "SELECT name FROM quoted") == [("a;b",)]


def test_parquet_and_json(rt, tmp_path):
    con = duckdb.connect()
    con.execute(f"COPY (SELECT range AS id, 'n' || range AS name, range AS score FROM range(5))"
                f" TO '{tmp_path / 'p.parquet'}' (FORMAT parquet)")
    con.close()
    assert run(rt, str(tmp_path / "p.parquet"), table="fromparquet").succeeded == 5
    source = write(tmp_path / "p.ndjson", "".join(
        json.dumps({"id": i, "name": f"n{i}", "score": i}) + "\n" for i in range(4)))
    assert run(rt, source, table="fromjson").succeeded == 4
    assert rows(rt, "SELECT sum(score) FROM fromjson") == [(6,)]


def test_sniffed_columns_are_journaled_and_fixed(rt, tmp_path):
    source = write(tmp_path / "s.csv", "id,when\n1,2024-01-02\n2,2024-01-03\n")
    info = run(rt, source, table="sniffed", columns=None)
    assert info.succeeded == 2
    assert "Columns sniffed from" in " ".join(queries.journal(rt.store.reader(), info.id).message)
    assert rows(rt, "SELECT data_type FROM information_schema.columns WHERE table_name = "
                    "'sniffed' ORDER BY ordinal_position") == [("BIGINT",), ("DATE",)]


@pytest.mark.parametrize(("options", "message"), [
    ({"mode": "merge"}, "mode must be one of append, replace, upsert"),
    ({"mode": "upsert"}, "mode 'upsert' needs a key"),
    ({"max_rejects": "lots"}, "max_rejects must be a count"),
    ({"max_rejects": "150%"}, "is not a percentage between 0% and 100%"),
    ({"columns": {"id": "BIGINT); DROP TABLE jobs; --"}}, "is not a column type"),
    ({"quote": "ab"}, "quote must be one character"),
    ({"key": ["nope"]}, "key column 'nope' is not among the columns"),
])
def test_bad_options_are_refused_at_submit(rt, people, options, message):
    with pytest.raises(JobobsError, match=message):
        importing.submit(rt, people, "people", **{"columns": COLUMNS, **options})


def _big(tmp_path, count=300_000):
    path = tmp_path / "big.csv"
    duckdb.sql(f"COPY (SELECT range AS id, 'name' || range AS name, range % 1000 AS score "
               f"FROM range({count})) TO '{path}' (HEADER)")
    return str(path)


def test_pause_during_the_load_and_resume_gives_exact_rows(rt, tmp_path):
    source = _big(tmp_path)
    job = importing.submit(rt, source, "big", columns=COLUMNS, on_failure="keep",
                           chunk_rows=20_000)
    wait_until(lambda: rt.job(job.id).succeeded >= 20_000, timeout=60)
    rt.pause(job.id)
    paused = rt.wait(job.id, timeout=30)
    assert paused.status is Status.PAUSED
    loaded = rows(rt, "SELECT count(*) FROM big")[0][0]
    assert loaded == json.loads(paused.checkpoint)["state"]["row"] and 0 < loaded < 300_000
    rt.resume(job.id)
    done = rt.wait(job.id, timeout=120)
    assert done.status is Status.FINISHED and done.succeeded == 300_000
    assert rows(rt, "SELECT count(*), count(DISTINCT id) FROM big") == [(300_000, 300_000)]


def test_cancel_of_an_all_or_nothing_import_leaves_the_target_untouched(rt, tmp_path):
    source = _big(tmp_path, 1_000_000)
    job = importing.submit(rt, source, "big", columns=COLUMNS)
    wait_for_status(rt, job.id, Status.RUNNING)
    rt.cancel(job.id)
    info = rt.wait(job.id, timeout=30)
    assert info.status is Status.CANCELED
    assert rows(rt, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'big' "
                    "OR table_name LIKE '_jobobs%'") == [(0,)]


def test_export_fix_and_replay_rejects(rt, people, tmp_path):
    from jobobs.kinds.rejects import export_rejects, replay

    original = run(rt, people)
    exported = tmp_path / "rejects.csv"
    assert export_rejects(rt.store.reader(), original.id, str(exported)) == 3
    fixed = exported.read_text().replace("2,bob,x", "2,bob,20").replace(
        "4,dan,40,extra", "4,dan,40").replace("5,eve", "5,eve,50")
    corrected = tmp_path / "fixed.csv"
    corrected.write_text(fixed)
    again = rt.wait(replay(rt, original.id, str(corrected)).id, timeout=30)
    assert again.status is Status.FINISHED and (again.succeeded, again.rejected) == (3, 0)
    assert again.parent_id == original.id
    assert rows(rt, "SELECT id, score FROM people ORDER BY id") == [
        (1, 10), (2, 20), (3, 30), (4, 40), (5, 50), (6, 60)]


def test_a_target_in_another_attached_database(rt, people, tmp_path):
    rt.store.con.execute(f"ATTACH '{tmp_path / 'other.duckdb'}' AS other")
    info = run(rt, people, table="other.main.people")
    assert info.status is Status.FINISHED and info.rejected == 3
    assert rows(rt, "SELECT count(*) FROM other.main.people") == [(3,)]
    assert rows(rt, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_jobobs%'") \
        == [(0,)]
    keyed = run(rt, people, table="other.main.people", key=["id"])
    assert keyed.status is Status.FAILED and "another attached database" in keyed.error


def test_null_keys_in_the_target_do_not_lose_rows(rt, tmp_path):
    rt.store.reader().execute("CREATE TABLE people (id BIGINT, name VARCHAR, score INTEGER)")
    rt.store.reader().execute("INSERT INTO people VALUES (NULL, 'nokey', 0), (1, 'ann', 1)")
    source = write(tmp_path / "n.csv", "id,name,score\n1,ann2,1\n2,bob,2\n3,cy,3\n")
    info = run(rt, source, key=["id"], duplicates="reject")
    assert (info.total, info.succeeded, info.rejected, info.duplicates) == (3, 2, 1, 1)
    assert rows(rt, "SELECT count(*) FROM people") == [(4,)]


def test_a_rewind_runs_before_a_checkpoint_step_that_adds_rejects(db):
    from jobobs.db.store import Store

    store = Store(db)
    store.write(atomic=lambda con: con.execute(
        "INSERT INTO rejects VALUES (1, 1, now()::TIMESTAMP, 'error', NULL, NULL, NULL, NULL, "
        "NULL, 'r', 'm')"), rewinds=[(1, 0)])
    assert store.reader().execute("SELECT count(*) FROM rejects").fetchone() == (1,)
    store.close()


def test_sniffing_skips_an_empty_first_file(rt, tmp_path):
    write(tmp_path / "a.csv", "")
    write(tmp_path / "b.csv", "id,name\n1,ann\n2,bob\n")
    info = run(rt, str(tmp_path / "*.csv"), table="sniffed", columns=None)
    assert (info.succeeded, info.rejected, info.has_warning) == (2, 0, True)


def test_a_keyed_dry_run_leaves_no_staging_tables(rt, people):
    info = run(rt, people, key=["id"], dry_run=True)
    assert info.status is Status.FINISHED and info.rejected == 3
    assert rows(rt, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_jobobs%' "
                    "OR table_name = 'people'") == [(0,)]


def test_replay_after_an_import_with_sniffed_columns(rt, tmp_path):
    from jobobs.kinds.rejects import export_rejects, replay

    source = write(tmp_path / "s.csv", "id,day\n1,2024-01-02\n2,2024-01-03\n3,2024-01-04\n"
                                       "4,2024-12-01,extra\n")
    first = run(rt, source, table="days", columns=None)
    assert first.rejected == 1
    export_rejects(rt.store.reader(), first.id, str(tmp_path / "r.csv"))
    (tmp_path / "f.csv").write_text((tmp_path / "r.csv").read_text().replace(",extra", ""))
    again = rt.wait(replay(rt, first.id, str(tmp_path / "f.csv")).id, timeout=30)
    assert again.status is Status.FINISHED and again.succeeded == 1


def test_a_parquet_dataset_gets_one_file_per_chunk_and_no_row_twice(rt, tmp_path):
    dataset = tmp_path / "orders"
    dataset.mkdir()
    source = write(tmp_path / "o.csv", "id,amount\n" + "".join(
        f"{i},{'x' if i % 50 == 0 else i}\n" for i in range(1, 1001)))
    info = run(rt, source, "orders", dataset=str(dataset), chunk_rows=300, on_failure="keep",
               key=["id"], columns={"id": "BIGINT", "amount": "INTEGER"}, max_rejects=None)
    assert info.status is Status.FINISHED and (info.succeeded, info.rejected) == (980, 20)
    parts = sorted(p.name for p in dataset.iterdir())
    assert parts == [f"part-{info.id:08d}-{start:012d}.parquet" for start in (0, 300, 600, 900)]
    glob_ = str(dataset / "*.parquet")
    assert duckdb.sql(f"SELECT count(*), count(DISTINCT id) FROM '{glob_}'").fetchone() == (
        980, 980)
    again = run(rt, source, "orders", dataset=str(dataset), key=["id"], max_rejects=None,
                columns={"id": "BIGINT", "amount": "INTEGER"})  # every key is there already
    assert (again.succeeded, again.rejected, again.duplicates) == (0, 1000, 980)
    assert duckdb.sql(f"SELECT count(*) FROM '{glob_}'").fetchone() == (980,)
    for wrong in ({"mode": "replace"}, {"key": ["id"], "duplicates": "update"},
                  {"dataset": str(tmp_path / "missing")}):
        with pytest.raises(JobobsError, match="dataset"):
            importing.submit(rt, source, "orders", **{"dataset": str(dataset), **wrong})
