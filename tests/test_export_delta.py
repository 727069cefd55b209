"""Differential exports as a data engineer runs them: an empty delta never replaces the
last one, file names from templates, rows that share the watermark's value exported once,
the watermark shown and reset from the command line (on the file and through a server),
and Excel files or a clear refusal for an extension jobobs cannot write."""

import json
import os
import re
from datetime import UTC, datetime

import duckdb
import jobs  # the test jobs: for the server, and one that waits for its gate
import pytest
from click.testing import CliRunner
from serving import Server, cli

import jobobs
from jobobs import JobobsError, Status
from jobobs.access import queries
from jobobs.cli import main
from jobobs.db.quack import extension_path
from jobobs.kinds import exporting, watermarks


@pytest.fixture
def orders(rt):
    rt.store.reader().execute(
        "CREATE TABLE orders AS SELECT range AS id, DATE '2024-01-01' + (range // 4)::INT "
        "AS day, range * 1.5 AS amount FROM range(10)")
    return "orders"


def run(rt, to, **options):
    return rt.wait(exporting.submit(rt, str(to), **options).id, timeout=60)


def add(rt, sql):
    rt.store.reader().execute(f"INSERT INTO orders {sql}")


def rows(path):
    return path.read_text().splitlines()[1:]


def journal(rt, job_id):
    return list(queries.journal(rt.store.reader(), job_id).message)


def test_an_empty_delta_leaves_the_last_file_and_the_watermark(rt, orders, tmp_path):
    target = tmp_path / "delta.csv"
    first = run(rt, target, table=orders, watermark="id", name="delta")
    written = target.read_bytes()
    mark = rt.store.reader().execute(
        "SELECT value, job_id FROM export_watermarks WHERE name = 'delta'").fetchall()
    second = run(rt, target, table=orders, watermark="id", name="delta")
    assert second.status is Status.FINISHED and second.succeeded == 0
    assert target.read_bytes() == written
    assert mark == [("9", first.id)] == rt.store.reader().execute(
        "SELECT value, job_id FROM export_watermarks WHERE name = 'delta'").fetchall()
    assert any("no new rows" in line and "left as it was" in line
               for line in journal(rt, second.id))


def test_write_empty_writes_a_header_only_file_when_asked(rt, orders, tmp_path):
    target = tmp_path / "delta.csv"
    run(rt, target, table=orders, watermark="id", name="delta")
    run(rt, target, table=orders, watermark="id", name="delta", write_empty=True)
    assert target.read_text().splitlines() == ["id,day,amount"]


def test_templates_name_each_delta(rt, orders, tmp_path):
    template = str(tmp_path / "orders-{seq}-{job_id}-{date}.csv")
    first = run(rt, template, table=orders, watermark="id", name="numbered")
    empty = run(rt, template, table=orders, watermark="id", name="numbered")
    add(rt, "VALUES (10, DATE '2024-03-01', 1)")
    third = run(rt, template, table=orders, watermark="id", name="numbered")
    days = {datetime.fromtimestamp(third.created_at, UTC).date().isoformat(),
            datetime.now(UTC).date().isoformat()}  # the run's day, whichever side of midnight
    made = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("orders-"))
    one, two = (name.removesuffix(".csv").split("-", 3) for name in made)
    assert len(made) == 2 and empty.id not in (int(one[2]), int(two[2]))
    assert one[:3] == ["orders", "1", str(first.id)] and one[3] in days
    assert two[:3] == ["orders", "2", str(third.id)] and two[3] in days
    assert (tmp_path / ("-".join(two) + ".csv")).read_text().splitlines()[1:] == [
        "10,2024-03-01,1.0"]


@pytest.mark.parametrize(("to", "message"), [
    ("out-{day}.csv", "unknown placeholder {day}; use {date}, {job_id} or {seq}"),
    ("out-{seq.real}.csv", "unknown placeholder"),
    ("out-{}.csv", "unknown placeholder"),
    ("{date}/out.csv", "placeholders go in the file name"),
    ("out-{seq.csv", "unbalanced"),
])
def test_a_bad_template_is_refused_when_submitted(rt, tmp_path, to, message):
    with pytest.raises(JobobsError, match=message.replace("{", r"\{").replace("}", r"\}")
                       .replace("(", r"\(")):
        exporting.submit(rt, str(tmp_path / to), query="SELECT 1 AS x")


def test_a_bad_template_is_one_line_on_the_command_line(db, tmp_path):
    result = CliRunner().invoke(main, ["export", "--query", "SELECT 1 AS x", "--to",
                                       str(tmp_path / "x-{when}.csv"), "--db", db])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: unknown placeholder {when}; use {date}, {job_id} or {seq} "
        "(double a brace to write one: {{ }})"]


def test_a_template_expands_inside_the_export_folder(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    with jobobs.Runtime(str(tmp_path / "jobs.duckdb"), handle_signals=False,
                        export_dirs=[str(allowed)]) as runtime:
        info = run(runtime, allowed / "out-{seq}.csv", query="SELECT 1 AS x")
        assert info.status is Status.FINISHED
        assert (allowed / "out-1.csv").read_text().split() == ["x", "1"]
        with pytest.raises(JobobsError, match="outside the folders"):
            exporting.submit(runtime, str(tmp_path / "out-{seq}.csv"), query="SELECT 1 AS x")


def test_a_row_arriving_later_with_the_same_value_is_exported_once(rt, orders, tmp_path):
    target = tmp_path / "by-day.csv"
    run(rt, target, table=orders, watermark="day", name="by-day")
    assert len(rows(target)) == 10  # days 2024-01-01 .. 2024-01-03, the last with 2 rows
    add(rt, "VALUES (50, DATE '2024-01-03', 7.5)")  # late, on the day already exported
    second = run(rt, target, table=orders, watermark="day", name="by-day")
    assert rows(target) == ["50,2024-01-03,7.5"] and second.succeeded == 1
    third = run(rt, target, table=orders, watermark="day", name="by-day")
    assert third.succeeded == 0 and rows(target) == ["50,2024-01-03,7.5"]
    add(rt, "VALUES (51, DATE '2024-01-03', 8), (52, DATE '2024-01-04', 9)")
    run(rt, target, table=orders, watermark="day", name="by-day")
    assert sorted(rows(target)) == ["51,2024-01-03,8.0", "52,2024-01-04,9.0"]


def test_with_a_key_a_changed_row_at_the_mark_is_not_exported_again(rt, orders, tmp_path):
    target = tmp_path / "by-day.csv"
    run(rt, target, table=orders, watermark="day", key=["id"], name="keyed")
    rt.store.reader().execute("UPDATE orders SET amount = 0 WHERE id = 9")
    add(rt, "VALUES (60, DATE '2024-01-03', 2)")
    run(rt, target, table=orders, watermark="day", key=["id"], name="keyed")
    assert rows(target) == ["60,2024-01-03,2.0"]


def test_a_limit_that_splits_rows_of_one_value_loses_none(rt, tmp_path):
    rt.store.reader().execute("CREATE TABLE ties AS SELECT * FROM (VALUES (1, 'a'), (1, 'b'), "
                              "(1, 'c'), (2, 'd'), (2, 'e')) t(n, tag)")
    seen = []
    for _ in range(4):
        info = run(rt, tmp_path / "part.csv", table="ties", watermark="n", limit=2,
                   name="ties")
        if info.succeeded:
            seen += rows(tmp_path / "part.csv")
    assert sorted(seen) == ["1,a", "1,b", "1,c", "2,d", "2,e"]


def test_key_goes_with_a_watermark(rt, tmp_path):
    with pytest.raises(JobobsError, match="key goes with watermark"):
        exporting.submit(rt, str(tmp_path / "x.csv"), query="SELECT 1 AS x", key=["x"])


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_watermark_show_list_and_reset_on_the_file(db, tmp_path):
    with jobobs.Runtime(db, handle_signals=False) as runtime:
        runtime.store.reader().execute("CREATE TABLE t AS SELECT range AS id FROM range(3)")
        run(runtime, tmp_path / "t.csv", table="t", watermark="id", name="t-delta")
    code, out = invoke("watermark", "show", "t-delta", "--db", db)
    assert code == 0 and re.search(r"^column\s+id$", out, re.M)
    assert re.search(r"^value\s+2$", out, re.M) and re.search(r"^seq\s+1$", out, re.M)
    code, out = invoke("watermark", "show", "t-delta", "--db", db, "--json")
    shown = json.loads(out)
    assert code == 0 and (shown["name"], shown["column"], shown["value"]) == ("t-delta", "id", "2")
    assert shown["updated_at"] and shown["rows_at_value"] == 1 and shown["seq"] == 1
    code, out = invoke("watermark", "list", "--db", db, "--json")
    assert code == 0 and [w["name"] for w in json.loads(out)] == ["t-delta"]
    code, out = invoke("watermark", "show", "nope", "--db", db)
    assert code == 1 and out.strip() == "Error: no watermark named 'nope'"
    code, out = invoke("watermark", "reset", "t-delta", "--db", db)
    assert code == 0 and out.strip() == "watermark t-delta reset (it was id = 2): " \
        "the next run exports every row"
    code, out = invoke("watermark", "list", "--db", db)
    assert code == 0 and out.strip() == "(none)"
    with jobobs.Runtime(db, handle_signals=False) as runtime:
        info = run(runtime, tmp_path / "t.csv", table="t", watermark="id", name="t-delta")
        assert info.succeeded == 3


@pytest.mark.slow
def test_watermark_reset_through_a_server_and_refused_to_an_analyst(tmp_path):
    db = str(tmp_path / "jobs.duckdb")
    server = Server(db, "--export-dir", str(tmp_path)).wait_ready()
    try:
        with jobobs.connect(db) as client:
            job_id = client.submit_export(str(tmp_path / "j.csv"), name="jobs-delta",
                                          query="SELECT range AS id FROM range(3)",
                                          watermark="id")
            assert client.wait(job_id, timeout=30, progress=False).status is Status.FINISHED
        result = cli("watermark", "show", "jobs-delta", "--db", db, "--json")
        assert result.returncode == 0 and json.loads(result.stdout)["value"] == "2"
        with jobobs.connect(url=server.dashboard, analyst_token=server.analyst_token) as reader:
            assert reader.watermarks()["name"].tolist() == ["jobs-delta"]
            with pytest.raises(JobobsError, match="cannot reset watermarks"):
                reader.reset_watermark("jobs-delta")
        result = cli("watermark", "reset", "jobs-delta", "--db", db)
        assert result.returncode == 0, result.stderr
        result = cli("watermark", "list", "--db", db, "--json")
        assert json.loads(result.stdout) == []
    finally:
        assert server.stop() == 0, server.output()


def test_excel_files_are_real_xlsx(rt, orders, tmp_path):
    target = tmp_path / "orders.xlsx"
    info = run(rt, target, table=orders)
    assert info.status is Status.FINISHED and info.succeeded == 10
    con = duckdb.connect()
    con.execute(f"LOAD '{extension_path('excel')}'")
    assert con.execute(f"SELECT count(*), sum(amount) FROM read_xlsx('{target}')").fetchone() \
        == (10, 67.5)


@pytest.mark.parametrize("name", ["y.xls", "y.xml", "y", "y.csv.bz2"])
def test_an_extension_jobobs_cannot_write_is_refused(rt, tmp_path, name):
    with pytest.raises(JobobsError, match=r"cannot tell the format of .* from its name; "
                       r"name it \.csv, \.parquet, \.json or \.xlsx"):
        exporting.submit(rt, str(tmp_path / name), query="SELECT 1 AS x")
    assert not os.listdir(tmp_path) or "jobs.duckdb" in os.listdir(tmp_path)


def test_an_explicit_format_takes_any_name(rt, tmp_path):
    info = run(rt, tmp_path / "y.txt", query="SELECT 1 AS x", format="csv")
    assert info.status is Status.FINISHED and (tmp_path / "y.txt").read_text().split() == [
        "x", "1"]


def test_two_runs_of_one_export_name_take_turns_and_number_their_files(rt, tmp_path):
    rt.store.reader().execute("CREATE TABLE big AS SELECT range AS id FROM range(2000000)")
    template = str(tmp_path / "out-{seq}.csv")
    first = exporting.submit(rt, template, query="SELECT * FROM big", name="nightly")
    second = exporting.submit(rt, template, query="SELECT range AS id FROM range(3)",
                              name="nightly")
    for handle in (first, second):
        assert rt.wait(handle.id, timeout=120).status is Status.FINISHED
    counts = sorted(len(rows(tmp_path / name)) for name in ("out-1.csv", "out-2.csv"))
    assert counts == [3, 2000000]
    assert rt.store.reader().execute(
        "SELECT seq FROM export_files WHERE name = 'nightly'").fetchall() == [(2,)]


def test_a_numbered_template_never_replaces_a_file(rt, tmp_path):
    (tmp_path / "out-1.csv").write_text("keep me\n")
    info = run(rt, tmp_path / "out-{seq}.csv", query="SELECT 1 AS x", name="numbered")
    assert info.status is Status.FAILED
    assert (tmp_path / "out-1.csv").read_text() == "keep me\n"
    assert journal(rt, info.id)[-1].endswith(
        "out-1.csv exists already: a file name with {seq} never replaces a file; move it "
        "away, or give the export another name")


def test_rows_without_a_watermark_value_are_counted_in_a_warning(rt, tmp_path):
    rt.store.reader().execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 'a'), (2, 'b'), "
                              "(NULL, 'n'), (NULL, 'm')) v(id, x)")
    info = run(rt, tmp_path / "t.csv", table="t", watermark="id", name="nulls")
    assert info.status is Status.FINISHED and info.has_warning and info.succeeded == 2
    assert rows(tmp_path / "t.csv") == ["1,a", "2,b"]
    assert any(line.startswith("2 rows have no id (NULL) and are not exported: a "
                               "differential export follows the values of id")
               for line in journal(rt, info.id))
    again = run(rt, tmp_path / "t.csv", table="t", watermark="id", name="nulls")
    assert again.has_warning and again.succeeded == 0


def test_a_later_row_identical_to_one_exported_goes_out_too(rt, tmp_path):
    rt.store.reader().execute("CREATE TABLE u AS SELECT * FROM (VALUES (1, 'a'), (2, 'b')) "
                              "v(id, x)")
    run(rt, tmp_path / "u.csv", table="u", watermark="id", name="twins")
    rt.store.reader().execute("INSERT INTO u VALUES (2, 'b'), (2, 'b')")
    second = run(rt, tmp_path / "u.csv", table="u", watermark="id", name="twins")
    assert second.succeeded == 2 and rows(tmp_path / "u.csv") == ["2,b", "2,b"]
    third = run(rt, tmp_path / "u.csv", table="u", watermark="id", name="twins")
    assert third.succeeded == 0
    rt.store.reader().execute("INSERT INTO u VALUES (2, 'b')")
    fourth = run(rt, tmp_path / "u.csv", table="u", watermark="id", name="twins")
    assert fourth.succeeded == 1 and rows(tmp_path / "u.csv") == ["2,b"]


def test_rows_at_the_value_are_counted_in_a_table_not_carried_in_the_mark(rt, tmp_path):
    rt.store.reader().execute("CREATE TABLE d AS SELECT range AS id, DATE '2024-01-01' AS day "
                              "FROM range(5000)")
    first = run(rt, tmp_path / "d.csv", table="d", watermark="day", name="daily")
    con = rt.store.reader()
    assert con.execute("SELECT count(*), sum(count) FROM export_watermark_rows "
                       "WHERE name = 'daily' AND job_id = ?", [first.id]).fetchone() == (5000, 5000)
    assert len(con.execute("SELECT checkpoint FROM jobs WHERE id = ?", [first.id]).fetchone()[0]) \
        < 1000
    assert watermarks.show(con, "daily")["rows_at_value"] == 5000


def test_reset_refuses_while_an_export_of_that_name_waits_and_forgets_the_rows(tmp_path):
    with jobobs.Runtime(str(tmp_path / "jobs.duckdb"), workers=1,
                        handle_signals=False) as runtime:
        con = runtime.store.reader()
        con.execute("CREATE TABLE d AS SELECT range AS id FROM range(3)")
        run(runtime, tmp_path / "d.csv", table="d", watermark="id", name="held")
        busy = runtime.submit(jobs.blocked, "reset-held")
        queued = exporting.submit(runtime, str(tmp_path / "d.csv"), table="d", watermark="id",
                                  name="held")
        runtime.flush()
        with pytest.raises(JobobsError, match=rf"^export job {queued.id} \(held\) is queued; "
                           r"reset its watermark once it stops$"):
            watermarks.reset(con, "held")
        assert watermarks.show(con, "held")["value"] == "2"
        jobs.gate("reset-held").set()
        for handle in (busy, queued):
            runtime.wait(handle.id, timeout=60)
        assert watermarks.reset(con, "held")["value"] == "2"
        assert con.execute("SELECT count(*) FROM export_watermark_rows WHERE name = 'held'"
                           ).fetchone() == (0,)


@pytest.mark.parametrize("to", ["out-{seq:>1000000000}.csv", "out-{seq:021}.csv",
                                "out-{seq:x}.csv", "out-{date:04}.csv", "out-{seq:4}.csv"])
def test_a_placeholder_takes_only_a_zero_padded_width(rt, tmp_path, to):
    with pytest.raises(JobobsError, match=r"^out-\{\w+:[^}]*\}\.csv: a placeholder takes no "
                       r"format but a zero-padded width up to 20, such as \{seq:04\}"):
        exporting.submit(rt, str(tmp_path / to), query="SELECT 1 AS x")


def test_a_zero_padded_seq(rt, tmp_path):
    info = run(rt, tmp_path / "out-{seq:04}-{job_id:06}.csv", query="SELECT 1 AS x")
    assert info.status is Status.FINISHED
    assert (tmp_path / f"out-0001-{info.id:06}.csv").exists()
