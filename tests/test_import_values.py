"""Values DuckDB's CSV reader would lose, and what a bad value does (``bad_values``).

DuckDB 1.5.5 turns a bad TIMESTAMPTZ or TIMETZ into NULL without a reject, keeps a nested
value with a NULL where an element was bad, and fails the whole read at a bad GEOMETRY:
each of these is a reject at its line. A bad value rejects its line, is set to NULL with a
warning (``ignore``), or stops the import (``stop``), by column. Both import paths are
run: straight into the target (no key) and through the staging tables (a key).
"""

import pytest

from jobobs import Status
from jobobs.kinds import importing

PATHS = {"one pass": {}, "staged": {"key": ["id"]}}


def write(path, text):
    path.write_text(text)
    return str(path)


def run(rt, source, columns, **options):
    return rt.wait(importing.submit(rt, source, "t", columns=columns, **options).id,
                   timeout=120)


def rows(rt, sql, *args):
    return rt.store.reader().execute(sql, list(args)).fetchall()


def rejects(rt, job_id):
    rt.flush()
    return rows(rt, "SELECT line_no, column_name, reason, raw, kind, message FROM rejects "
                    "WHERE job_id = ? ORDER BY seq", job_id)


UNTRUSTED = {"id": "INTEGER", "ts": "TIMESTAMPTZ", "t": "TIMETZ", "s": "STRUCT(a INTEGER)",
             "g": "GEOMETRY", "l": "TIMESTAMPTZ[]"}
GOOD = '"2024-01-01 10:00:00+00","12:00:00+01","{\'a\': 1}","POINT(1 2)","[2024-01-02]"'


@pytest.mark.parametrize("path", PATHS)
def test_values_the_reader_would_lose_are_rejects_at_their_line(rt, tmp_path, path):
    source = write(tmp_path / "u.csv", "id,ts,t,s,g,l\n"
                   f"1,{GOOD}\n"
                   '2,"not a time","12:00:00+01","{\'a\': 1}","POINT(1 2)","[2024-01-02]"\n'
                   f"3,{GOOD}\n"
                   '4,"2024-01-01 10:00:00+00","25:99:00+00","{\'a\': 1}","POINT(1 2)",\n'
                   '5,"2024-01-01 10:00:00+00",,"{\'a\': \'x\'}","POINT(1 2)",\n'
                   '6,"2024-01-01 10:00:00+00",,,"POINT(1 x)",\n'
                   '7,,,,,"[soon]"\n'
                   "8,,,,,\n")
    info = run(rt, source, UNTRUSTED, **PATHS[path])
    assert info.status is Status.FINISHED, info.error
    assert (info.processed, info.succeeded, info.rejected) == (8, 3, 5)
    assert rows(rt, "SELECT id, ts IS NULL, s.a, g::VARCHAR, len(l) FROM t ORDER BY id") == [
        (1, False, 1, "POINT (1 2)", 1), (3, False, 1, "POINT (1 2)", 1),
        (8, True, None, None, None)]
    found = rejects(rt, info.id)
    assert [(line, column, reason, kind) for line, column, reason, _, kind, _ in found] == [
        (3, "ts", "cast error", "error"), (5, "t", "cast error", "error"),
        (6, "s", "cast error", "error"), (7, "g", "cast error", "error"),
        (8, "l", "cast error", "error")]
    assert found[0][3].startswith('2,"not a time"')
    assert found[0][5] == ('Error when converting column "ts". Could not convert string '
                           '"not a time" to TIMESTAMP WITH TIME ZONE')
    assert found[3][3] == '6,"2024-01-01 10:00:00+00",,,"POINT(1 x)",'


@pytest.mark.parametrize("path", PATHS)
def test_ignored_bad_values_become_null_with_a_warning(rt, tmp_path, path):
    source = write(tmp_path / "i.csv", "id,score,ts,day\n1,10,2024-01-01 10:00:00+00,2024-01-01\n"
                   "2,x,2024-01-01 10:00:00+00,2024-01-01\n3,30,nope,2024-13-45\n"
                   "4,4.5,2024-01-01 10:00:00+00,2024-01-04\n5,50,,\n")
    columns = {"id": "INTEGER", "score": "INTEGER", "ts": "TIMESTAMPTZ", "day": "DATE"}
    info = run(rt, source, columns, bad_values={"score": "ignore", "ts": "ignore"},
               **PATHS[path])
    assert info.status is Status.FINISHED and info.has_warning, info.error
    # line 4 keeps its bad date a reject: only score and ts are ignored
    assert (info.processed, info.succeeded, info.rejected) == (5, 4, 1)
    assert rows(rt, "SELECT id, score, ts IS NULL, day FROM t ORDER BY id") == [
        (1, 10, False, rows(rt, "SELECT DATE '2024-01-01'")[0][0]),
        (2, None, False, rows(rt, "SELECT DATE '2024-01-01'")[0][0]),
        (4, None, False, rows(rt, "SELECT DATE '2024-01-04'")[0][0]),
        (5, 50, True, None)]
    found = rejects(rt, info.id)
    assert sorted((line, column, kind) for line, column, _, _, kind, _ in found) == [
        (3, "score", "warning"), (4, "day", "error"), (5, "score", "warning")]
    assert {raw for line, _, _, raw, _, _ in found if line == 5} == {
        "4,4.5,2024-01-01 10:00:00+00,2024-01-04"}
    rt.flush()
    journal = [m for (m,) in rows(rt, "SELECT message FROM journal WHERE job_id = ? "
                                      "AND level = 'WARNING'", info.id)]
    assert any("set to NULL" in m for m in journal)


@pytest.mark.parametrize("path", PATHS)
def test_a_bad_value_in_a_stop_column_stops_the_import(rt, tmp_path, path):
    source = write(tmp_path / "s.csv", "id,score,day\n1,10,2024-01-01\n2,20,2024-01-02,extra\n"
                   "3,x,2024-01-03\n4,40,2024-02-30\n")
    columns = {"id": "INTEGER", "score": "INTEGER", "day": "DATE"}
    info = run(rt, source, columns, bad_values={"*": "reject", "day": "stop"}, **PATHS[path])
    assert info.status is Status.FAILED
    assert info.error.startswith(f"JobobsError: {source}, line 5: ")
    assert "The import stops at a bad value in day (bad_values 'stop'); nothing was " \
           "written" in info.error
    assert not rows(rt, "SELECT * FROM duckdb_tables() WHERE table_name = 't'")
    assert [(line, column, kind) for line, column, _, _, kind, _ in rejects(rt, info.id)] == [
        (3, None, "error"), (4, "score", "error"), (5, "day", "error")]


@pytest.mark.parametrize("path", PATHS)
def test_stop_does_not_stop_at_a_line_without_a_bad_value_in_its_column(rt, tmp_path, path):
    source = write(tmp_path / "s.csv", "id,score\n1,10\n2,20,extra\n3,x\n4,40\n")
    info = run(rt, source, {"id": "INTEGER", "score": "INTEGER"},
               bad_values={"id": "stop"}, **PATHS[path])
    assert info.status is Status.FINISHED and info.rejected == 2, info.error
    assert rows(rt, "SELECT id FROM t ORDER BY id") == [(1,), (4,)]


def numbers_file(tmp_path, rounding):
    """A file with text in a number column on many lines, a quoted line break before them
    and blank lines among them; and (``rounding``) a value an integer would round."""
    lines, expected = ["id,note,score"], []
    for i in range(1, 3001):
        note = '"two\nlines"' if i == 5 else f"n{i}"
        score = "x" if i % 97 == 0 else ("7.5" if rounding and i == 2500 else str(i))
        lines.append(f"{i},{note},{score}")
        if i == 1000:
            lines.append("")
        if score in ("x", "7.5"):
            # DuckDB counts a record with a quoted line break as one line, blank lines too
            expected.append((len(lines), f"{i},n{i},{score}"))
    return write(tmp_path / "n.csv", "\n".join(lines) + "\n"), expected


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("rounding", [False, True], ids=["text only", "and a rounding"])
def test_text_in_a_number_column_is_placed_at_its_line(rt, tmp_path, path, rounding):
    source, expected = numbers_file(tmp_path, rounding)
    info = run(rt, source, {"id": "INTEGER", "note": "VARCHAR", "score": "INTEGER"},
               max_rejects=None, **PATHS[path])
    assert info.status is Status.FINISHED, info.error
    assert info.rejected == len(expected) and info.succeeded == 3000 - len(expected)
    assert [(line, raw) for line, _, _, raw, _, _ in rejects(rt, info.id)] == expected
    assert rows(rt, "SELECT count(*), sum(score) FROM t") == [
        (3000 - len(expected), sum(i for i in range(1, 3001) if i % 97
                                   and not (rounding and i == 2500)))]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("text, stops, line, column", [
    ("id,a,b\n1,1,1\n2,x,y\n3,2.5,zz\n4,5,6\n", {"b": "stop"}, 3, "b"),
    ("id,n,d\n1,5,2024-01-01\n2,abc,2024-13-01\n", {"n": "stop"}, 3, "n"),
], ids=["two bad numbers", "a bad date first"])
def test_stop_is_seen_on_a_line_with_another_bad_value(rt, tmp_path, path, text, stops, line,
                                                        column):
    names = text.split("\n")[0].split(",")
    columns = {name: "DATE" if name == "d" else "INTEGER" for name in names}
    info = run(rt, write(tmp_path / "s.csv", text), columns, bad_values=stops, **PATHS[path])
    assert info.status is Status.FAILED
    assert f", line {line}: Error when converting column \"{column}\"" in info.error, info.error


@pytest.mark.parametrize("path", PATHS)
def test_a_nested_number_its_leaf_would_round_is_a_reject(rt, tmp_path, path):
    source = write(tmp_path / "n.csv", 'id,s,l,d\n1,"{\'a\': 1}","[1,2]","[1.2]"\n'
                   '2,"{\'a\': 1.5}","[1,2]","[1.2]"\n3,"{\'a\': 1}","[1,2.5]","[1.2]"\n'
                   '4,"{\'a\': 1}","[1,2]","[1.25]"\n')
    columns = {"id": "INTEGER", "s": "STRUCT(a INTEGER)", "l": "INTEGER[]",
               "d": "DECIMAL(4,1)[]"}
    info = run(rt, source, columns, **PATHS[path])
    assert info.status is Status.FINISHED, info.error
    assert rows(rt, "SELECT id FROM t") == [(1,)]
    assert [(line, column) for line, column, *_ in rejects(rt, info.id)] == [
        (3, "s"), (4, "l"), (5, "d")]


def test_bad_values_naming_a_column_the_file_does_not_have_is_an_error(rt, tmp_path):
    source = write(tmp_path / "c.csv", "id,score\n1,2\n")
    info = rt.wait(importing.submit(rt, source, "t", bad_values={"Score": "stop"}).id,
                   timeout=60)
    assert info.status is Status.FAILED
    assert "bad_values names 'Score', which is not among the columns" in info.error


def test_a_replay_leaves_out_the_lines_imported_with_a_warning(rt, tmp_path):
    from jobobs.kinds import rejects as replays

    source = write(tmp_path / "w.csv", "id,n,d\n1,10,2024-01-01\n2,abc,2024-01-02\n3,7,x\n")
    columns = {"id": "INTEGER", "n": "INTEGER", "d": "DATE"}
    info = run(rt, source, columns, bad_values={"n": "ignore"})
    assert (info.succeeded, info.rejected) == (2, 1), info.error
    fixed = str(tmp_path / "fixed.csv")
    rt.flush()
    assert replays.export_rejects(rt.store.reader(), info.id, fixed) == 2
    again = rt.wait(replays.replay(rt, info.id, fixed).id, timeout=60)
    assert again.processed == 1  # line 4 alone; line 3 was imported with its warning
    assert rows(rt, "SELECT id, count(*) FROM t GROUP BY id ORDER BY id") == [(1, 1), (2, 1)]


def test_staging_tables_kept_by_an_older_version_are_upgraded_on_resume(rt, tmp_path):
    with rt.store.transaction() as con:  # as a job paused before bad values had a policy
        con.execute("""CREATE TABLE _jobobs_stage_1 (_file INTEGER, _row BIGINT, id INTEGER,
            score INTEGER, _inexact VARCHAR, _inexact_message VARCHAR,
            _inexact_values VARCHAR[])""")
        con.execute("""CREATE TABLE _jobobs_stage_rejects_1 (file INTEGER, path VARCHAR,
            line BIGINT, column_name VARCHAR, reason VARCHAR, raw VARCHAR, message VARCHAR)""")
    source = write(tmp_path / "o.csv", "id,score\n1,10\n2,x\n3,30\n")
    info = run(rt, source, {"id": "INTEGER", "score": "INTEGER"}, key=["id"])
    assert info.id == 1 and info.status is Status.FINISHED, info.error
    assert (info.succeeded, info.rejected) == (2, 1)
    assert rows(rt, "SELECT id FROM t ORDER BY id") == [(1,), (3,)]


@pytest.mark.parametrize("path", PATHS)
def test_rejects_are_numbered_in_the_order_of_the_files(rt, tmp_path, path):
    second = write(tmp_path / "a.csv", "id,score\n3,x\n")
    first = write(tmp_path / "b.csv", "id,score\n1,y\n2,2\n")
    info = rt.wait(importing.submit(rt, [first, second], "t",
                                    columns={"id": "INTEGER", "score": "INTEGER"},
                                    **PATHS[path]).id, timeout=60)
    assert info.status is Status.FINISHED, info.error
    rt.flush()
    assert rows(rt, "SELECT seq, source FROM rejects WHERE job_id = ? ORDER BY seq",
                info.id) == [(1, first), (2, second)]
