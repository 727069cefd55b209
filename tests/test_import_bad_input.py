"""Malformed inputs: each import ends failed with one clear journal line, or finishes with
the right rejects; the runtime keeps going and nothing partial reaches the target."""

import gzip

import duckdb
import jobs
import pytest

from jobobs import Status
from jobobs.access import queries
from jobobs.kinds import importing

COLUMNS = {"id": "BIGINT", "name": "VARCHAR"}


def make(tmp_path, case):
    path = tmp_path / f"{case}.csv"
    if case == "missing":
        return str(path)
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "header_only":
        path.write_text("id,name\n")
    elif case == "binary":
        path.write_bytes(bytes(range(256)) * 40)
    elif case == "truncated_gzip":
        path = tmp_path / "t.csv.gz"
        body = "".join(f"{i},{hash(str(i))}\n" for i in range(20000)).encode()
        packed = gzip.compress(b"id,name\n" + body)
        path.write_bytes(packed[: len(packed) // 2])
    elif case == "corrupt_parquet":
        path = tmp_path / "c.parquet"
        path.write_bytes(b"PAR1" + b"\x00garbage" * 100 + b"PAR1")
    elif case == "invalid_utf8":
        path.write_bytes(b"id,name\n1,ann\n2,\xff\xfe\xfa\n3,cy\n")
    elif case == "long_line":
        path.write_bytes(b"id,name\n1,ann\n2," + b"x" * 10_000_000 + b"\n3,cy\n")
    elif case == "unterminated_quote":
        path.write_text('id,name\n1,ann\n2,"bob\n3,cy\n')
    elif case == "wrong_delimiter":
        path.write_text("".join(f"{i};name{i}\n" for i in range(300)))
    return str(path)


CASES = {
    # case: (expected status, text in the error / journal, rows that must be in the target)
    "missing": ("failed", "does not exist", None),
    "directory": ("failed", "is a directory, not a file", None),
    "empty": ("finished", "The input has no records", 0),
    "header_only": ("finished", "The input has no records", 0),
    "binary": ("failed", "", None),
    "truncated_gzip": ("failed", "is not a complete gzip file", None),
    "corrupt_parquet": ("failed", "", None),
    "invalid_utf8": ("finished", "invalid encoding", 2),
    "long_line": ("finished", "line too long", 2),
    "unterminated_quote": ("finished", "unquoted value", 1),
    "wrong_delimiter": ("failed", "too many rejects: 299", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_input(rt, tmp_path, case):
    status, text, imported = CASES[case]
    info = rt.wait(importing.submit(rt, make(tmp_path, case), "target", columns=COLUMNS).id,
                   timeout=60)
    lines = queries.journal(rt.store.reader(), info.id)
    reasons = set(queries.rejects(rt.store.reader(), info.id).reason)
    assert info.status.value == status, (info.error, list(lines.message))
    if status == "failed":
        errors = lines[lines.level == "ERROR"]
        assert len(errors) == 1 and "Traceback" not in errors.message.iloc[0]
        assert text.lower() in info.error.lower()
        exists = rt.store.reader().execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'target'").fetchone()[0]
        assert exists == 0  # nothing partial
    else:
        assert text in " ".join(lines.message) or text in reasons
        assert rt.store.reader().execute("SELECT count(*) FROM target").fetchone()[0] == imported
    # the runtime goes on
    assert rt.wait(rt.submit(jobs.noop).id, timeout=10).status is Status.FINISHED


def test_a_target_with_other_columns_fails_and_stays_as_it_was(rt, tmp_path):
    rt.store.reader().execute("CREATE TABLE target (id BIGINT, other DATE)")
    rt.store.reader().execute("INSERT INTO target VALUES (7, DATE '2024-01-01')")
    source = tmp_path / "ok.csv"
    source.write_text("id,name\n1,ann\n")
    info = rt.wait(importing.submit(rt, str(source), "target", columns=COLUMNS).id, timeout=30)
    assert info.status is Status.FAILED and "name" in info.error
    assert rt.store.reader().execute("SELECT * FROM target").fetchall() == [
        (7, duckdb.sql("SELECT DATE '2024-01-01'").fetchone()[0])]
