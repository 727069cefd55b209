"""JSON, newline-delimited JSON and Parquet imports reject a line, not the job: a value its
column cannot take (or could take only rounded, or a nested value with a bad element) is a
reject at its line or row, with the raw line or the row as JSON text, by the column's
``bad_values`` policy; the good rows land exactly."""

import datetime as dt
import gzip
import json
from decimal import Decimal

import duckdb
import pytest

from jobobs import Status
from jobobs.kinds import importing
from jobobs.kinds.importing import Import
from jobobs.kinds.sources import ImportOptions
from jobobs.testing import Recorder, journal_messages, wait_until

COLUMNS = {"id": "BIGINT", "score": "INTEGER", "amount": "DECIMAL(12,2)",
           "ts": "TIMESTAMPTZ", "tz": "TIMETZ", "pt": "STRUCT(x INTEGER, tags VARCHAR[])",
           "name": "VARCHAR"}


def write(path, text):
    path.write_text(text)
    return str(path)


def rows(rt, sql):
    return rt.store.reader().execute(sql).fetchall()


def rejects(rt, job_id, fields="line_no, column_name, reason, raw"):
    return rt.store.reader().execute(f"SELECT {fields} FROM rejects WHERE job_id = ? "
                                     "ORDER BY seq", [job_id]).fetchall()


def messages(rt, job_id):
    return dict(rejects(rt, job_id, "line_no, message"))


def run(rt, source, table="t", **options):
    info = rt.wait(importing.submit(rt, source, table, max_rejects=None, **options).id,
                   timeout=60)
    assert info.status is Status.FINISHED, info.error
    return info


NDJSON = [
    {"id": 1, "score": 10, "amount": 10.75, "ts": "2024-01-01 10:00:00+02",
     "tz": "10:00:00+02", "pt": {"x": 1, "tags": ["a"]}, "name": "ann"},
    {"id": 2, "score": "x"},
    {"id": 3, "amount": 10.755},
    None,  # a blank line
    {"id": 5, "ts": "2024-13-01 10:00:00+02"},
    {"id": 6, "tz": "25:00:00+02"},
    '{"id": 7, "name": "cut',
    "[1, 2]",
    {"id": 9, "pt": {"x": "y", "tags": []}},
    {"id": 10, "score": 10.0, "pt": {"x": 2, "tags": ["b", "c"]}, "extra": 1},
    {"id": 11, "score": 10.5},
    {"id": 12, "pt": {"x": 1, "tags": "a"}},
    {"id": 13, "pt": {"x": 1.5}},
]


def ndjson_text(records):
    return "".join("\n" if r is None else (r if isinstance(r, str) else json.dumps(r)) + "\n"
                   for r in records)


def test_ndjson_bad_values_are_rejects_at_their_line(rt, tmp_path):
    source = write(tmp_path / "in.ndjson", ndjson_text(NDJSON))
    info = run(rt, source, columns=COLUMNS)
    assert rows(rt, "SELECT id, score, amount, epoch(ts), tz::VARCHAR, pt, name FROM t "
                    "ORDER BY id") == [
        (1, 10, Decimal("10.75"), dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC).timestamp(),
         "10:00:00+02", {"x": 1, "tags": ["a"]}, "ann"),
        (10, 10, None, None, None, {"x": 2, "tags": ["b", "c"]}, None)]
    lines = ndjson_text(NDJSON).splitlines()
    assert rejects(rt, info.id) == [
        (2, "score", "cast error", lines[1]),
        (3, "amount", "cast error", lines[2]),
        (5, "ts", "cast error", lines[4]),
        (6, "tz", "cast error", lines[5]),
        (7, None, "invalid json", lines[6]),
        (8, None, "not an object", lines[7]),
        (9, "pt", "cast error", lines[8]),
        (11, "score", "cast error", lines[10]),
        (12, "pt", "cast error", lines[11]),
        (13, "pt", "cast error", lines[12])]
    said = messages(rt, info.id)
    assert said[2] == 'Error when converting column "score". Could not convert string "x" ' \
                      "to INTEGER"
    assert said[3] == 'Error when converting column "amount". Could not convert string ' \
                      '"10.755" to DECIMAL(12,2) without rounding'
    assert said[5].startswith('Error when converting column "ts". Could not convert string '
                              '"2024-13-01 10:00:00+02" to TIMESTAMP WITH TIME ZONE')
    assert said[11].endswith('"10.5" to INTEGER without rounding')
    assert said[8] == "Expected OBJECT, but got ARRAY"
    assert info.succeeded == 2 and info.rejected == 10


def test_a_json_array_rejects_rows_by_number_with_the_row_as_json(rt, tmp_path):
    source = write(tmp_path / "in.json", '[{"id": 1, "score": 1},\n {"id": 2, "score": "x"},'
                                         '\n 5,\n {"id": 4,\n  "score": 2.5}, {"id": 5}]')
    info = run(rt, source, columns={"id": "BIGINT", "score": "INTEGER"})
    assert rows(rt, "SELECT * FROM t ORDER BY id") == [(1, 1), (5, None)]
    assert rejects(rt, info.id) == [(2, "score", "cast error", '{"id":2,"score":"x"}'),
                                    (3, None, "not an object", "5"),
                                    (4, "score", "cast error", '{"id":4,"score":2.5}')]


def test_objects_over_several_lines_are_numbered_by_record(rt, tmp_path):
    source = write(tmp_path / "in.json", '{\n  "id": 1, "score": 1\n}\n{\n  "id": 2,\n'
                                         '  "score": "x"\n}\n')
    info = run(rt, source, columns={"id": "BIGINT", "score": "INTEGER"})
    assert rows(rt, "SELECT * FROM t") == [(1, 1)]
    assert rejects(rt, info.id) == [(2, "score", "cast error", '{"id":2,"score":"x"}')]


def test_parquet_values_that_do_not_fit_are_rejects_at_their_row(rt, tmp_path):
    path = str(tmp_path / "in.parquet")
    duckdb.sql(f"""COPY (SELECT * FROM (VALUES (1::BIGINT, '1', 1.5::DOUBLE, 7::BIGINT),
        (2, 'x', 2.0, 8), (3, '3', 10.755, 9), (4, '4', 4.0, 3000000000),
        (5, NULL, NULL, NULL)) v(id, score, amount, big)) TO '{path}'""")
    info = run(rt, path, columns={"id": "BIGINT", "score": "INTEGER",
                                  "amount": "DECIMAL(12,2)", "big": "INTEGER"})
    assert rows(rt, "SELECT id, score, amount::VARCHAR, big FROM t ORDER BY id") == [
        (1, 1, "1.50", 7), (5, None, None, None)]
    assert rejects(rt, info.id) == [
        (2, "score", "cast error", '{"id":2,"score":"x","amount":2.0,"big":8}'),
        (3, "amount", "cast error", '{"id":3,"score":"3","amount":10.755,"big":9}'),
        (4, "big", "cast error", '{"id":4,"score":"4","amount":4.0,"big":3000000000}')]
    assert messages(rt, info.id)[3] == ('Error when converting column "amount". Could not '
                                        "convert DOUBLE 10.755 to DECIMAL(12,2) without "
                                        "rounding")


POLICY_LINES = ['{"id": 1, "score": 1, "day": "2024-01-01"}',
                '{"id": 2, "score": "x", "day": "2024-01-02"}',
                '{"id": 3, "score": "y", "day": "2024-13-45"}',
                '{"id": 4, "score": 4, "day": "nope"}']
POLICY_COLUMNS = {"id": "BIGINT", "score": "INTEGER", "day": "DATE"}


def test_ignore_keeps_the_row_with_null_and_a_warning(rt, tmp_path):
    source = write(tmp_path / "in.ndjson", "\n".join(POLICY_LINES) + "\n")
    info = run(rt, source, columns=POLICY_COLUMNS, bad_values="ignore")
    assert rows(rt, "SELECT id, score, day::VARCHAR FROM t ORDER BY id") == [
        (1, 1, "2024-01-01"), (2, None, "2024-01-02"), (3, None, None), (4, 4, None)]
    assert rejects(rt, info.id, "kind, line_no, column_name, raw") == [
        ("warning", 2, "score", POLICY_LINES[1]), ("warning", 3, "score", POLICY_LINES[2]),
        ("warning", 3, "day", POLICY_LINES[2]), ("warning", 4, "day", POLICY_LINES[3])]
    assert rejects(rt, info.id, "message")[1] == (
        'Error when converting column "score". Could not convert string "y" to INTEGER',)


def test_a_line_is_rejected_when_any_bad_column_rejects_it(rt, tmp_path):
    source = write(tmp_path / "in.ndjson", "\n".join(POLICY_LINES) + "\n")
    info = run(rt, source, columns=POLICY_COLUMNS, bad_values={"score": "ignore"})
    assert rows(rt, "SELECT id, score, day::VARCHAR FROM t ORDER BY id") == [
        (1, 1, "2024-01-01"), (2, None, "2024-01-02")]
    assert rejects(rt, info.id, "kind, line_no, column_name") == [
        ("warning", 2, "score"), ("error", 3, "day"), ("error", 4, "day")]
    assert rejects(rt, info.id, "message")[1] == (
        'Error when converting column "score". Could not convert string "y" to INTEGER; Error '
        'when converting column "day". Could not convert string "2024-13-45" to DATE',)


def staged(tmp_path, lines, columns, **options):
    """Read ``lines`` as one file into an import's staging tables, outside any runtime:
    (the staged rows, the staged rejects) as the import's next phase finds them."""
    source = write(tmp_path / "in.ndjson", "\n".join(lines) + "\n")
    recorder = Recorder()
    with recorder.context() as ctx:
        job = Import(ctx, ImportOptions(source=source, table="t", columns=columns,
                                        **options))
        job.read([source], {"phase": "read", "file": 0})
        job.read([source], {"phase": "read", "file": 0})  # a resume reads it again
        cur = recorder.con
        return (cur.execute(f"SELECT * FROM {job.stage} ORDER BY _row").fetchall(),
                cur.execute(f"SELECT line, column_name, reason, level FROM "
                            f"{job.stage_rejects} ORDER BY line, level").fetchall())


def test_stop_records_the_line_as_an_error_with_its_column(tmp_path):
    stage, stage_rejects = staged(tmp_path, POLICY_LINES, POLICY_COLUMNS,
                                  bad_values={"score": "ignore", "day": "stop"})
    assert [row[:2] for row in stage] == [(0, 1), (0, 2)]
    assert stage_rejects == [(2, "score", "cast error", "warning"),
                             (3, "day", "cast error", "error"),
                             (4, "day", "cast error", "error")]


def test_a_stop_column_is_named_before_a_reject_column(tmp_path):
    _, stage_rejects = staged(tmp_path, ['{"id": 1, "score": "x", "day": "x"}'],
                              POLICY_COLUMNS, bad_values={"score": "reject", "day": "stop"})
    assert stage_rejects == [(1, "day", "cast error", "error")]


def test_staged_rows_carry_no_marks(tmp_path):
    stage, _ = staged(tmp_path, POLICY_LINES, POLICY_COLUMNS, bad_values="ignore")
    assert [row[:2] for row in stage] == [(0, 1), (0, 2), (0, 3), (0, 4)]
    assert {row[-3:] for row in stage} == {(None, None, None)}


def test_lines_that_are_not_utf8_are_rejects_and_the_lines_after_keep_their_number(
        rt, tmp_path):
    path = tmp_path / "in.ndjson"
    path.write_bytes(b'{"id": 1}\n\n{"id": 2, "name": "\xff"}\n{"id": 3, "score": "x"}\n'
                     b'{"id": 4}\r\n')
    info = run(rt, str(path), columns={"id": "BIGINT", "score": "INTEGER", "name": "VARCHAR"})
    assert rows(rt, "SELECT id FROM t ORDER BY id") == [(1,), (4,)]
    assert [(n, c, r) for n, c, r, _ in rejects(rt, info.id)] == [
        (3, None, "invalid encoding"), (4, "score", "cast error")]


@pytest.mark.parametrize("suffix", [".ndjson", ".json.gz"])
def test_good_rows_land_exactly_around_bad_ones(rt, tmp_path, suffix):
    records = [{"id": i, "amount": f"{i}.25", "day": f"2024-01-{i % 28 + 1:02}",
                "tags": [str(i)], "name": f"n{i}"} for i in range(1, 5001)]
    bad = {7: {"amount": "x"}, 57: {"day": "2024-02-30"}}  # by id % 100

    def line(record):
        return json.dumps({**record, **bad.get(record["id"] % 100, {})}) + "\n"

    text = "".join(line(r) + ("\n" if r["id"] % 1000 == 0 else "") for r in records)
    path = tmp_path / f"in{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    info = run(rt, str(path), columns={"id": "BIGINT", "amount": "DECIMAL(10,2)",
                                       "day": "DATE", "tags": "VARCHAR[]", "name": "VARCHAR"})
    assert info.rejected == 100 and info.succeeded == 4900
    good = [r for r in records if r["id"] % 100 not in bad]
    assert rows(rt, "SELECT id, amount::VARCHAR, day::VARCHAR, tags, name FROM t "
                    "ORDER BY id") == [tuple(r.values()) for r in good]
    # a blank line after each thousandth record
    assert [line for line, *_ in rejects(rt, info.id)] == sorted(
        i + i // 1000 for i in range(1, 5001) if i % 100 in bad)


def test_a_pause_while_reading_resumes_to_the_same_rows_and_rejects(rt, tmp_path):
    path = tmp_path / "big.ndjson"
    duckdb.sql(f"""COPY (SELECT CASE WHEN i % 1000 = 7 THEN '{{"id":' || i || ',"score":"x"}}'
        ELSE '{{"id":' || i || ',"score":' || i % 100 || '}}' END FROM range(600000) t(i))
        TO '{path}' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '')""")
    job = importing.submit(rt, str(path), "t", columns={"id": "BIGINT", "score": "INTEGER"},
                           max_rejects=None)
    wait_until(lambda: any("Reading" in m for m in journal_messages(rt, job.id)), timeout=30)
    rt.pause(job.id)
    assert rt.wait(job.id, timeout=60).status is Status.PAUSED
    rt.resume(job.id)
    info = rt.wait(job.id, timeout=120)
    assert info.status is Status.FINISHED and (info.succeeded, info.rejected) == (599_400, 600)
    assert rows(rt, "SELECT count(*), count(DISTINCT id), sum(score) FROM t") == [
        (599_400, 599_400, sum(i % 100 for i in range(600_000) if i % 1000 != 7))]
    assert [line for line, *_ in rejects(rt, info.id)] == list(range(8, 600_001, 1000))


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_ndjson_rejects_on_a_dask_worker(tmp_path):
    from serving import Server, wait_status

    import jobobs

    source = write(tmp_path / "in.ndjson", "\n".join(POLICY_LINES) + "\n\n{bad\n")
    server = Server(str(tmp_path / "jobs.duckdb"), "--executor", "dask", "--dask-workers",
                    "1", workers=1).wait_ready(120)
    client = jobobs.connect(server.db)
    try:
        job_id = client.submit_import(source, "t", columns=POLICY_COLUMNS, max_rejects=None,
                                      bad_values={"score": "ignore"})
        assert wait_status(client, job_id, "finished", "failed", timeout=120) == "finished"
        assert str(client.info(job_id).worker).startswith("tcp://")
        assert client.sql("SELECT id, coalesce(score, -1) FROM t ORDER BY id").values.tolist(
            ) == [[1, 1], [2, -1]]
        frame = client.rejects(job_id)
        assert list(zip(frame.kind, frame.line_no, frame.reason)) == [
            ("warning", 2, "cast error"), ("error", 3, "cast error"),
            ("error", 4, "cast error"), ("error", 6, "invalid json")]
    finally:
        client.close()
        assert server.stop(timeout=30) == 0, server.output()


def test_objects_spread_over_lines_are_read_as_records(rt, tmp_path):
    source = write(tmp_path / "spread.json", '{"id": 1,\n "score": 2}\n{"id": 2,\n "score": 3}\n')
    info = rt.wait(importing.submit(rt, source, "spread",
                                    columns={"id": "BIGINT", "score": "INTEGER"}).id,
                   timeout=60)
    assert info.status is Status.FINISHED and info.rejected == 0, info.error
    assert rows(rt, "SELECT id, score FROM spread ORDER BY id") == [(1, 2), (2, 3)]


def test_a_malformed_line_does_not_stop_the_columns_being_sniffed(rt, tmp_path):
    source = write(tmp_path / "sniffed.ndjson",
                   '{"id": 1, "n": 2}\n{"id": 2, "n": \n{"id": 3, "n": 4}\n')
    info = rt.wait(importing.submit(rt, source, "sniffed").id, timeout=60)
    assert info.status is Status.FINISHED and info.rejected == 1, info.error
    assert rows(rt, "SELECT id, n FROM sniffed ORDER BY id") == [(1, 2), (3, 4)]
    assert [(line, reason) for line, _, reason, _ in rejects(rt, info.id)] == [
        (2, "invalid json")]
