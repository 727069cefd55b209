"""Imports that change nothing without a word: an existing table's types, casts that never
round, upserts that honour their policies, raw lines kept byte for byte, and replays that
point at the original file."""

import json
import os

import duckdb
import pytest
from click.testing import CliRunner

from jobobs import JobobsError, Status
from jobobs.access import queries
from jobobs.cli import main
from jobobs.kinds import importing
from jobobs.kinds.rejects import export_rejects, replay


def write(path, text):
    path.write_text(text)
    return str(path)


def rows(rt, sql):
    return rt.store.reader().execute(sql).fetchall()


def journal(rt, job_id):
    return " | ".join(queries.journal(rt.store.reader(), job_id).message)


def rejects(rt, job_id):
    frame = queries.rejects(rt.store.reader(), job_id)
    return list(zip(frame.line_no, frame.column_name, frame.reason, frame.raw))


def csv_files(folder):
    return sorted(name for name in os.listdir(folder) if ".csv" in name)


def orders(tmp_path, integers=25_000, name="orders.csv"):
    """``integers`` orders with whole amounts, then two with cents: past the sniffer's
    sample."""
    lines = [f"{i},{i * 2}" for i in range(1, integers + 1)]
    lines += [f"{integers + 1},10.75", f"{integers + 2},30050.75"]
    return write(tmp_path / name, "order_id,amount\n" + "\n".join(lines) + "\n")


# -- 1. an existing table's types; casts that never round -------------------------------

@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_a_reimport_takes_the_existing_tables_types(rt, tmp_path, mode):
    rows(rt, "CREATE TABLE orders (order_id BIGINT, amount DECIMAL(12,2))")
    rows(rt, "INSERT INTO orders VALUES (1, 5.25)")
    source = orders(tmp_path)
    keyed = {"key": ["order_id"]} if mode == "upsert" else {}
    info = rt.wait(importing.submit(rt, source, "orders", mode=mode, max_rejects=None,
                                    **keyed).id, timeout=120)
    assert info.status is Status.FINISHED and info.rejected == 0, info.error
    assert rows(rt, "SELECT amount::VARCHAR FROM orders WHERE order_id > 25000 "
                    "ORDER BY order_id") == [("10.75",), ("30050.75",)]
    assert "Columns of orders: order_id BIGINT, amount DECIMAL(12,2)" in journal(rt, info.id)


@pytest.mark.parametrize("key", [[], ["order_id"]])
@pytest.mark.parametrize("kind", ["BIGINT", "DECIMAL(12,0)", "INTEGER"])
def test_a_value_that_does_not_fit_is_a_reject_never_rounded(rt, tmp_path, kind, key):
    rows(rt, f"CREATE TABLE orders (order_id BIGINT, amount {kind})")
    source = write(tmp_path / "o.csv", "order_id,amount\n1,10\n2,10.75\n3,x\n4,30050.75\n"
                                       "5,7.000\n6,1e2\n")
    info = rt.wait(importing.submit(rt, source, "orders", key=key).id, timeout=60)
    assert info.status is Status.FINISHED, info.error
    assert rows(rt, "SELECT order_id, amount::BIGINT FROM orders ORDER BY 1") == [
        (1, 10), (5, 7), (6, 100)]
    assert (info.succeeded, info.rejected) == (3, 3)
    assert rejects(rt, info.id) == [(3, "amount", "cast error", "2,10.75"),
                                    (4, "amount", "cast error", "3,x"),
                                    (5, "amount", "cast error", "4,30050.75")]
    message = queries.rejects(rt.store.reader(), info.id).message[0]
    assert "10.75" in message and "round" in message


def test_declared_columns_never_round_either(rt, tmp_path):
    source = write(tmp_path / "o.csv", "id,amount\n1,10.75\n2,10.755\n3,99999999999.5\n")
    info = rt.wait(importing.submit(rt, source, "prices", columns={
        "id": "BIGINT", "amount": "DECIMAL(12,2)"}).id, timeout=60)
    assert rows(rt, "SELECT id, amount::VARCHAR FROM prices") == [(1, "10.75")]
    assert [(line, raw) for line, _, _, raw in rejects(rt, info.id)] == [
        (3, "2,10.755"), (4, "3,99999999999.5")]


def test_the_line_of_a_reject_counts_the_lines_rejected_before_it(rt, tmp_path):
    source = write(tmp_path / "o.csv", "id,amount\n1,a\n2,1\n3,b,c\n4,2\n5,2.5\n6,3\n7,c\n"
                                       "8,4.5\n")
    info = rt.wait(importing.submit(rt, source, "o", columns={
        "id": "BIGINT", "amount": "BIGINT"}, key=["id"]).id, timeout=60)
    assert [(line, raw) for line, _, _, raw in rejects(rt, info.id)] == [
        (2, "1,a"), (4, "3,b,c"), (6, "5,2.5"), (8, "7,c"), (9, "8,4.5")]


def test_sniffing_a_new_file_sees_decimals_past_the_sample(rt, tmp_path):
    info = rt.wait(importing.submit(rt, orders(tmp_path), "fresh", columns=None).id,
                   timeout=120)
    assert info.status is Status.FINISHED and info.rejected == 0
    assert rows(rt, "SELECT amount FROM fresh WHERE order_id > 25000 ORDER BY 1") == [
        (10.75,), (30050.75,)]


# -- 4. upsert and the duplicates policy ------------------------------------------------

def test_upsert_refuses_a_duplicates_policy_it_cannot_honour(rt, tmp_path):
    source = write(tmp_path / "o.csv", "id,name\n1,ann\n")
    for policy in ("reject", "ignore"):
        with pytest.raises(JobobsError, match="'upsert' updates the rows whose key is already"):
            importing.submit(rt, source, "t", mode="upsert", key=["id"], duplicates=policy)
    job = importing.submit(rt, source, "t", mode="upsert", key=["id"])
    assert json.loads(rt.job(job.id).spec)["args"][0]["duplicates"] == "update"
    appended = importing.submit(rt, source, "t", key=["id"])
    assert json.loads(rt.job(appended.id).spec)["args"][0]["duplicates"] == "reject"


def test_upsert_from_the_command_line_says_what_it_does(db, tmp_path):
    first = write(tmp_path / "a.csv", "id,name\n1,ann\n")
    second = write(tmp_path / "b.csv", "id,name\n1,ann2\n2,bob\n")
    runner = CliRunner()
    assert runner.invoke(main, ["import", first, "--table", "t", "--db", db]).exit_code == 0
    result = runner.invoke(main, ["import", second, "--table", "t", "--key", "id", "--mode",
                                  "upsert", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    job_id = json.loads(result.output)["id"]
    with duckdb.connect(db, read_only=True) as con:
        spec = con.execute("SELECT spec FROM jobs WHERE id = ?", [job_id]).fetchone()[0]
    assert json.loads(spec)["args"][0]["duplicates"] == "update"
    refused = runner.invoke(main, ["import", second, "--table", "t", "--key", "id", "--mode",
                                   "upsert", "--duplicates", "reject", "--db", db])
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "'upsert' updates the rows whose key is already" in refused.output


# -- 5. raw lines byte for byte ---------------------------------------------------------

@pytest.mark.parametrize("key", [[], ["id"]])
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_an_invalid_encoding_reject_keeps_the_original_bytes(rt, tmp_path, key, ending):
    path = tmp_path / "enc.csv"
    path.write_bytes(ending.join(["id,name,status", "1,ann,ok", "2,Caf\xe9,shipped",
                                  '3,"multi', 'line",ok', "4,b\xe9d,ok", "5,dan,ok", ""]
                                 ).encode("latin-1"))
    info = rt.wait(importing.submit(rt, str(path), "t", key=key, columns={
        "id": "BIGINT", "name": "VARCHAR", "status": "VARCHAR"}).id, timeout=60)
    assert info.succeeded == 3
    assert [(r, raw) for _, _, r, raw in rejects(rt, info.id)] == [
        ("invalid encoding", "2,Caf\\xe9,shipped"), ("invalid encoding", "4,b\\xe9d,ok")]


# -- 6. replays point at the original file ------------------------------------------------

def test_a_replay_reports_the_original_lines_and_leaves_no_helper_file(rt, tmp_path):
    body = "".join(f"{i},{'x' if i in (101, 150) else i}\n" for i in range(1, 201))
    source = write(tmp_path / "big.csv", "id,score\n" + body)
    columns = {"id": "BIGINT", "score": "INTEGER"}
    first = rt.wait(importing.submit(rt, source, "s", columns=columns).id, timeout=60)
    assert [line for line, *_ in rejects(rt, first.id)] == [102, 151]
    export_rejects(rt.store.reader(), first.id, str(tmp_path / "r.csv"))
    write(tmp_path / "fixed.csv", (tmp_path / "r.csv").read_text().replace("150,x", "150,15"))
    again = rt.wait(replay(rt, first.id, str(tmp_path / "fixed.csv")).id, timeout=60)
    assert again.status is Status.FINISHED and (again.succeeded, again.rejected) == (1, 1)
    frame = queries.rejects(rt.store.reader(), again.id)
    assert list(zip(frame.source, frame.line_no, frame.raw)) == [(source, 102, "101,x")]
    assert csv_files(tmp_path) == ["big.csv", "fixed.csv", "r.csv"]


def test_a_failed_replay_leaves_no_helper_file_either(rt, tmp_path):
    source = write(tmp_path / "s.csv", "id,score\n1,a\n2,b\n3,3\n")
    first = rt.wait(importing.submit(rt, source, "s", columns={
        "id": "BIGINT", "score": "INTEGER"}).id, timeout=60)
    export_rejects(rt.store.reader(), first.id, str(tmp_path / "r.csv"))
    rows(rt, "DROP TABLE s")
    rows(rt, "CREATE TABLE s (other DATE)")  # the replay's insert fails
    again = rt.wait(replay(rt, first.id, str(tmp_path / "r.csv")).id, timeout=60)
    assert again.status is Status.FAILED
    assert csv_files(tmp_path) == ["r.csv", "s.csv"]


# -- 7. raw lines and line numbers as DuckDB counts the records ---------------------------

TEXT = {"id": "INTEGER", "txt": "VARCHAR"}


@pytest.mark.parametrize("key", [[], ["id"]])
@pytest.mark.parametrize("data, options, line, raw", [
    (b'id,txt\n1,5" pipe\n2,x\n3,Caf\xe9 x\n4,ok\n', {}, 4, "3,Caf\\xe9 x"),
    (b'id,txt\n1,"say \\"hi"\n2,x\n3,Caf\xe9\n4,ok\n', {"escape": "\\"}, 4, "3,Caf\\xe9"),
    (b'id,txt\r1,a\r2,Caf\xe9\r3,ok\r', {}, 3, "2,Caf\\xe9"),
    (b'id,txt\n1,a\n\n\n2,"Caf\xe9\nb"\n3,ok\n', {}, 5, '2,"Caf\\xe9\nb"'),
], ids=["stray quote", "escape", "cr only", "blank lines"])
def test_an_invalid_encoding_reject_is_its_own_lines_bytes(rt, tmp_path, key, data, options,
                                                           line, raw):
    path = tmp_path / "enc.csv"
    path.write_bytes(data)
    info = rt.wait(importing.submit(rt, str(path), "t", key=key, columns=TEXT,
                                    **options).id, timeout=60)
    assert info.status is Status.FINISHED, info.error
    assert [(n, r, text) for n, _, r, text in rejects(rt, info.id)] == [
        (line, "invalid encoding", raw)]


def test_stray_quotes_never_give_a_reject_another_lines_bytes(rt, tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(b'id,txt,s\n1,5" pipe\n2,x\n3,7" pipe\n4,Caf\xe9,shipped\n5,ok\n'
                     b'6,other row\n')
    info = rt.wait(importing.submit(rt, str(path), "t", max_rejects=None, columns={
        **TEXT, "s": "VARCHAR"}).id, timeout=60)
    assert [(n, text) for n, _, r, text in rejects(rt, info.id) if r == "invalid encoding"
            ] == [(5, "4,Caf\\xe9,shipped")]


@pytest.mark.parametrize("key", [[], ["id"]])
@pytest.mark.parametrize("data, options, expected", [
    (b"id,txt\n1,a\n\n2.5,x\n3,ok\n", {}, [(4, "2.5,x")]),
    (b"id,txt\r\n1,a\r\n\r\n\r\n2.5,x\r\n3,ok\r\n4.5,y\r\n", {},
     [(5, "2.5,x"), (7, "4.5,y")]),
    (b'id,txt\n1,"say \\"hi"\n2,x\n3,"a \\"b"\n4.5,y\n5,ok\n', {"escape": "\\"},
     [(5, "4.5,y")]),
    (b'id,txt\r1,"a\rb"\r\r2.5,x\r3,ok\r', {}, [(4, "2.5,x")]),
    (b'id,txt\n1,a,extra\n\n2.5,"x, y"\n3,ok\n', {}, [(2, "1,a,extra"), (4, '2.5,"x, y"')]),
], ids=["blank line", "crlf blank lines", "escape", "cr only", "after a reject"])
def test_a_rounding_reject_has_its_line_and_raw(rt, tmp_path, key, data, options, expected):
    rows(rt, "CREATE TABLE t (id INTEGER, txt VARCHAR)")
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    info = rt.wait(importing.submit(rt, str(path), "t", key=key, **options).id, timeout=60)
    assert info.status is Status.FINISHED, info.error
    assert [(n, text) for n, _, _, text in rejects(rt, info.id)] == expected


def test_a_replay_of_a_rounding_reject_after_a_blank_line_fixes_it(rt, tmp_path):
    rows(rt, "CREATE TABLE t (id INTEGER, txt VARCHAR)")
    source = write(tmp_path / "b.csv", "id,txt\n1,a\n\n2.5,x\n3,ok\n")
    first = rt.wait(importing.submit(rt, source, "t").id, timeout=60)
    export_rejects(rt.store.reader(), first.id, str(tmp_path / "r.csv"))
    write(tmp_path / "fixed.csv", (tmp_path / "r.csv").read_text().replace("2.5,x", "2,x"))
    again = rt.wait(replay(rt, first.id, str(tmp_path / "fixed.csv")).id, timeout=60)
    assert (again.succeeded, again.rejected) == (1, 0), again.error
    assert rows(rt, "SELECT * FROM t ORDER BY id") == [(1, "a"), (2, "x"), (3, "ok")]


@pytest.mark.parametrize("key", [[], ["id"]])
def test_a_reimport_matches_the_tables_columns_whatever_their_case(rt, tmp_path, key):
    rows(rt, "CREATE TABLE orders (id BIGINT, amount DECIMAL(12,2))")
    source = write(tmp_path / "o.csv", "ID,Amount\n1,10.755\n2,3.5\n")
    info = rt.wait(importing.submit(rt, source, "orders", key=key).id, timeout=60)
    assert info.status is Status.FINISHED, info.error
    assert rows(rt, "SELECT id, amount::VARCHAR FROM orders") == [(2, "3.50")]
    assert [(n, c, r) for n, c, r, _ in rejects(rt, info.id)] == [(2, "Amount", "cast error")]
    assert "Columns of orders: ID BIGINT, Amount DECIMAL(12,2)" in journal(rt, info.id)


# -- 8. JSON and Parquet never round either ------------------------------------------------

def json_array(tmp_path):
    return write(tmp_path / "o.json", '[{"id":1,"amount":10.755,"n":2},'
                                      '{"id":2,"amount":3.5,"n":3},'
                                      '{"id":3,"amount":1.25,"n":2.5}]')


def ndjson(tmp_path):
    return write(tmp_path / "o.ndjson", '{"id":1,"amount":10.755,"n":2}\n\n'
                                        '{"id":2,"amount":3.5,"n":3}\n'
                                        '{"id":3,"amount":1.25,"n":2.5}\n')


def parquet(tmp_path):
    path = str(tmp_path / "o.parquet")
    duckdb.sql(f"COPY (SELECT * FROM (VALUES (1::BIGINT, 10.755::DOUBLE, 2::DOUBLE), "
               f"(2, 3.5, 3), (3, 1.25, 2.5)) v(id, amount, n)) TO '{path}'")
    return path


@pytest.mark.parametrize("source, lines", [
    (json_array, [(1, "amount", '{"id":1,"amount":10.755,"n":2}'),
                  (3, "n", '{"id":3,"amount":1.25,"n":2.5}')]),
    (ndjson, [(1, "amount", '{"id":1,"amount":10.755,"n":2}'),
              (4, "n", '{"id":3,"amount":1.25,"n":2.5}')]),
    (parquet, [(1, "amount", '{"id":1,"amount":10.755,"n":2.0}'),
               (3, "n", '{"id":3,"amount":1.25,"n":2.5}')]),
], ids=["json", "ndjson", "parquet"])
def test_json_and_parquet_values_that_do_not_fit_are_rejects(rt, tmp_path, source, lines):
    rows(rt, "CREATE TABLE orders (id BIGINT, amount DECIMAL(12,2), n INTEGER)")
    info = rt.wait(importing.submit(rt, source(tmp_path), "orders").id, timeout=60)
    assert info.status is Status.FINISHED, info.error
    assert rows(rt, "SELECT id, amount::VARCHAR, n FROM orders") == [(2, "3.50", 3)]
    assert [(n, c, raw) for n, c, _, raw in rejects(rt, info.id)] == lines
    assert {r for _, _, r, _ in rejects(rt, info.id)} == {"cast error"}
    message = queries.rejects(rt.store.reader(), info.id).message[0]
    assert "10.755" in message and "round" in message


@pytest.mark.parametrize("kind", ["decimal(12,2)", "NUMERIC(12, 2)"])
def test_a_decimal_declared_in_any_spelling_keeps_its_cents(rt, tmp_path, kind):
    source = write(tmp_path / "o.csv", "id,amount\n1,10.75\n2,10.755\n")
    info = rt.wait(importing.submit(rt, source, "prices", columns={
        "id": "BIGINT", "amount": kind}).id, timeout=60)
    assert rows(rt, "SELECT id, amount::VARCHAR FROM prices") == [(1, "10.75")]
    assert [(line, raw) for line, _, _, raw in rejects(rt, info.id)] == [(3, "2,10.755")]
