"""Export jobs on real files: formats, options, limit, differential runs, and no partial
file under the target name after a failure or a cancel."""

import gzip
import json

import duckdb
import pytest

from jobobs import JobobsError, Status
from jobobs.access import queries
from jobobs.kinds import exporting
from jobobs.testing import wait_for_status


@pytest.fixture
def orders(rt):
    rt.store.reader().execute(
        "CREATE TABLE orders AS SELECT range AS id, DATE '2024-01-01' + range::INT AS day, "
        "range * 1.5 AS amount FROM range(10)")
    return "orders"


def run(rt, to, **options):
    return rt.wait(exporting.submit(rt, str(to), **options).id, timeout=60)


def test_a_table_to_csv_with_options(rt, orders, tmp_path):
    target = tmp_path / "orders.csv"
    info = run(rt, target, table=orders, delimiter=";", date_format="%d/%m/%Y")
    assert info.status is Status.FINISHED and info.kind == "export"
    assert (info.total, info.processed, info.succeeded) == (10, 10, 10)
    lines = target.read_text().splitlines()
    assert lines[0] == "id;day;amount" and lines[1] == "0;01/01/2024;0.0"
    assert len(lines) == 11
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    journal = list(queries.journal(rt.store.reader(), info.id).message)
    assert "Starting export of 10 records" in journal


def test_a_query_to_gzip_parquet_and_json_with_a_limit(rt, orders, tmp_path):
    run(rt, tmp_path / "o.csv.gz", query="SELECT id FROM orders WHERE id < 5")
    assert gzip.decompress((tmp_path / "o.csv.gz").read_bytes()).decode().split() == [
        "id", "0", "1", "2", "3", "4"]
    run(rt, tmp_path / "o.parquet", table=orders, limit=3)
    assert duckdb.sql(f"SELECT count(*) FROM '{tmp_path / 'o.parquet'}'").fetchone() == (3,)
    run(rt, tmp_path / "o.json", query="SELECT id FROM orders ORDER BY id LIMIT 2")
    assert [json.loads(line) for line in (tmp_path / "o.json").read_text().splitlines()] == [
        {"id": 0}, {"id": 1}]


def test_differential_exports_only_new_rows(rt, orders, tmp_path):
    target = tmp_path / "delta.csv"
    first = run(rt, target, table=orders, watermark="id", name="orders-delta")
    assert first.succeeded == 10
    rt.store.reader().execute("INSERT INTO orders SELECT 10 + range, DATE '2024-02-01', 1 "
                              "FROM range(3)")
    second = run(rt, target, table=orders, watermark="id", name="orders-delta")
    assert second.succeeded == 3
    assert target.read_text().split()[1:] == ["10,2024-02-01,1.0", "11,2024-02-01,1.0",
                                              "12,2024-02-01,1.0"]
    assert rt.store.reader().execute("SELECT value FROM export_watermarks").fetchall() == [
        ("12",)]


def files(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("jobs.duckdb"))


def test_a_failed_export_leaves_no_file(rt, tmp_path):
    target = tmp_path / "broken.csv"
    info = run(rt, target, query="SELECT * FROM no_such_table")
    assert info.status is Status.FAILED and "no_such_table" in info.error
    assert files(tmp_path) == []


def test_a_canceled_export_leaves_no_file(rt, tmp_path):
    target = tmp_path / "big.csv"
    job = exporting.submit(rt, str(target), query="SELECT range AS id, md5(range::VARCHAR) "
                           "FROM range(30000000)")
    wait_for_status(rt, job.id, Status.RUNNING)
    rt.cancel(job.id)
    assert rt.wait(job.id, timeout=30).status is Status.CANCELED
    assert files(tmp_path) == []


@pytest.mark.parametrize(("options", "message"), [
    ({}, "give either a query or a table"),
    ({"query": "SELECT 1", "table": "t"}, "give either a query or a table"),
    ({"table": "orders", "format": "xml"}, "format must be one of"),
    ({"table": "orders", "limit": -1}, "limit must be a whole number"),
])
def test_bad_options_are_refused(rt, tmp_path, options, message):
    with pytest.raises(JobobsError, match=message):
        exporting.submit(rt, str(tmp_path / "x.csv"), **options)


def test_a_missing_folder_is_refused(rt, tmp_path):
    with pytest.raises(JobobsError, match="does not exist"):
        exporting.submit(rt, str(tmp_path / "nope" / "x.csv"), query="SELECT 1")


def test_a_limited_differential_export_takes_the_rows_in_watermark_order(rt, tmp_path):
    rt.store.reader().execute("CREATE TABLE ids AS SELECT * FROM (VALUES (5), (1), (3), (2), "
                              "(6), (4)) t(id)")
    seen = []
    for _ in range(3):
        run(rt, tmp_path / "part.csv", table="ids", watermark="id", limit=2, name="ids-delta")
        seen += [int(v) for v in (tmp_path / "part.csv").read_text().split()[1:]]
    assert seen == [1, 2, 3, 4, 5, 6]
