"""An import's options as people write them: columns declared the way a table declares them
and read by DuckDB (hostile text runs nothing), quoted empty CSV fields kept or NULL,
--bad-values on the command line, and a rejected line's reason, column and raw text from
the same error."""

import json

import duckdb
import pytest
from click.testing import CliRunner

from jobobs import JobobsError, Status
from jobobs.access import queries
from jobobs.cli import main
from jobobs.kinds import importing
from jobobs.kinds.sources import ImportOptions


def write(path, text):
    path.write_text(text)
    return str(path)


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def stored(db, job_id):
    """The options an import job's spec holds."""
    with duckdb.connect(db, read_only=True) as con:
        return json.loads(queries.job(con, job_id).spec[0])["args"][0]


def imported(rt, source, table, **options):
    info = rt.wait(importing.submit(rt, source, table, **options).id, timeout=60)
    rejects = queries.rejects(rt.store.reader(), info.id)
    return info, rejects


def rows(rt, sql):
    return rt.store.reader().execute(sql).fetchall()


# -- columns ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("id BIGINT, amount DECIMAL(12,2)", {"id": "BIGINT", "amount": "DECIMAL(12,2)"}),
    ('"first name" varchar, "say ""hi""" int, "it\'s" numeric',
     {"first name": "VARCHAR", 'say "hi"': "INTEGER", "it's": "DECIMAL(18,3)"}),
    ("s STRUCT(a INT, \"b c\" VARCHAR[]), m MAP(VARCHAR, INT), e ENUM('a', 'it''s')",
     {"s": 'STRUCT(a INTEGER, "b c" VARCHAR[])', "m": "MAP(VARCHAR, INTEGER)",
      "e": "ENUM('a', 'it''s')"}),
    ("l INTEGER[], ts timestamptz, t TIMETZ, g GEOMETRY, \"a)(\" int",
     {"l": "INTEGER[]", "ts": "TIMESTAMP WITH TIME ZONE", "t": "TIME WITH TIME ZONE",
      "g": "GEOMETRY", "a)(": "INTEGER"}),
])
def test_columns_are_a_table_s_column_list_read_by_duckdb(text, expected):
    assert ImportOptions("x.csv", "t", columns=text).columns == expected


def test_a_columns_dict_is_read_by_duckdb_too():
    options = ImportOptions("x.csv", "t", columns={"id": "int", "amount": "decimal(12, 2)",
                                                   "s": "STRUCT(a INT, b DATE)"})
    assert options.columns == {"id": "INTEGER", "amount": "DECIMAL(12,2)",
                               "s": "STRUCT(a INTEGER, b DATE)"}
    with pytest.raises(JobobsError, match=r"column 'amount': 'MONEY' is not a column type "
                                          r"\(Catalog Error: Type with name MONEY does not"):
        ImportOptions("x.csv", "t", columns={"id": "INTEGER", "amount": "MONEY"})
    with pytest.raises(JobobsError, match="width must be between 1 and 38"):
        ImportOptions("x.csv", "t", columns={"amount": "DECIMAL(40,2)"})
    with pytest.raises(JobobsError, match="already exists"):  # names differ only in case
        ImportOptions("x.csv", "t", columns={"Id": "INTEGER", "id": "INTEGER"})


@pytest.mark.parametrize("text", [
    "id INT); COPY (SELECT 42) TO '{out}' --",
    "id INT) AS SELECT 42; COPY (SELECT 42) TO '{out}' --",
    "id) AS SELECT * FROM read_text('{secret}') --",
    "id) AS FROM read_text('{secret}'",
    "id INT; COPY (SELECT 42) TO '{out}'",
    "id INT DEFAULT 3",
    "id INT NOT NULL",
    "id INT, CHECK (id > 0)",
    "id VARCHAR COLLATE nocase",
    "id INT, twice INT GENERATED ALWAYS AS (id * 2)",
])
def test_columns_that_are_more_than_names_and_types_are_refused_and_run_nothing(tmp_path,
                                                                                text):
    out, secret = tmp_path / "out.csv", write(tmp_path / "secret.txt", "secret")
    hostile = text.format(out=out, secret=secret)
    for columns in (hostile, {"id": hostile.removeprefix("id ")}):
        with pytest.raises(JobobsError, match=r"is not 'name TYPE'|is not a column type"):
            ImportOptions("x.csv", "t", columns=columns)
    assert not out.exists()


def test_the_columns_literal_reads_odd_names(rt, tmp_path):
    source = write(tmp_path / "odd.csv", "first name,say \"hi\",it's,amount\n"
                   "ann,x,1,10.5\nbob,y,2,10.755\n")
    info, rejects = imported(rt, source, "odd", columns='"first name" VARCHAR, "say ""hi""" '
                             'VARCHAR, "it\'s" INTEGER, amount DECIMAL(12,2)')
    assert info.status is Status.FINISHED
    assert rows(rt, "SELECT * FROM odd") == [("ann", "x", 1, pytest.approx(10.5))]
    assert [c[0] for c in rt.store.reader().execute("SELECT * FROM odd").description] == [
        "first name", 'say "hi"', "it's", "amount"]
    assert list(zip(rejects.line_no, rejects.column_name)) == [(3, "amount")]


def test_columns_with_commas_and_quoted_names_from_the_command_line(db, tmp_path):
    source = write(tmp_path / "pay.csv", "id,amount,first name,kind\n1,10.50,ann,a\n"
                   "2,3.25,bob,b\n3,1.5,cy,zzz\n")
    code, out = cli("import", source, "--table", "pay", "--db", db, "--json", "--columns",
                    "id BIGINT, amount DECIMAL(12,2), \"first name\" VARCHAR, "
                    "kind ENUM('a', 'b')")
    assert code == 0, out
    job = json.loads(out)
    assert (job["succeeded"], job["rejected"]) == (2, 1)
    assert stored(db, job["id"])["columns"] == {
        "id": "BIGINT", "amount": "DECIMAL(12,2)", "first name": "VARCHAR",
        "kind": "ENUM('a', 'b')"}
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("SELECT id, amount::VARCHAR, \"first name\", kind::VARCHAR "
                           "FROM pay ORDER BY id").fetchall() == [
            (1, "10.50", "ann", "a"), (2, "3.25", "bob", "b")]
    code, out = cli("import", source, "--table", "pay2", "--db", db, "--json", "--columns",
                    '{"id": "bigint", "amount": "DECIMAL(12,2)", "first name": "VARCHAR", '
                    '"kind": "VARCHAR"}')
    assert code == 0, out
    assert stored(db, json.loads(out)["id"])["columns"]["id"] == "BIGINT"


@pytest.mark.parametrize(("columns", "message"), [
    ("id BIGINT, amount DECIMALL(12,2)", "Type with name DECIMALL does not exist"),
    ("id", "'id' is not 'name TYPE'"),
    ("id INT); DROP TABLE jobs; --", "its parentheses do not pair"),
    ('{"id": "FOO"}', "column 'id': 'FOO' is not a column type"),
    ('{"id": ', "not a JSON object"),
])
def test_bad_columns_are_one_usage_error(db, tmp_path, columns, message):
    source = write(tmp_path / "x.csv", "id\n1\n")
    code, out = cli("import", source, "--table", "t", "--columns", columns, "--db", db)
    assert code == 2 and "Invalid value for --columns" in out and message in out
    assert "Traceback" not in out and out.strip().splitlines()[-1].startswith("Error:")


@pytest.mark.parametrize("key", [[], ["id"]], ids=["one pass", "staged"])
def test_a_value_an_enum_does_not_hold_is_a_reject_with_its_column(rt, tmp_path, key):
    """DuckDB's reader gives no byte position for this error."""
    source = write(tmp_path / "kinds.csv", "id,kind\n1,a\n2,zzz\n3,b\n")
    info, rejects = imported(rt, source, "kinds", key=key,
                             columns="id INTEGER, kind ENUM('a', 'b')")
    assert (info.status, info.succeeded, info.rejected) == (Status.FINISHED, 2, 1)
    assert list(zip(rejects.line_no, rejects.column_name, rejects.reason, rejects.raw)) == [
        (3, "kind", "cast error", "2,zzz")]


# -- quoted empty fields ------------------------------------------------------------------

SPECTRUM = 'a,b,c\n1,"",""\n2,3,4\n'  # csv-spectrum's empty_crlf/empty case


@pytest.mark.parametrize(("flags", "expected"), [
    ([], [(1, None, None), (2, "3", "4")]),
    (["--empty-as-null"], [(1, None, None), (2, "3", "4")]),
    (["--keep-empty"], [(1, "", ""), (2, "3", "4")]),
])
def test_quoted_empty_fields_are_null_or_kept(db, tmp_path, flags, expected):
    source = write(tmp_path / "empty.csv", SPECTRUM)
    code, out = cli("import", source, "--table", "e", "--columns",
                    "a INTEGER, b VARCHAR, c VARCHAR", "--db", db, "--json", *flags)
    assert code == 0, out
    assert stored(db, json.loads(out)["id"])["empty_as_null"] is ("--keep-empty" not in flags)
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("SELECT * FROM e ORDER BY a").fetchall() == expected


@pytest.mark.parametrize("key", [[], ["id"]], ids=["one pass", "staged"])
def test_a_kept_empty_field_in_a_column_that_is_not_text_is_a_reject(rt, tmp_path, key):
    source = write(tmp_path / "typed.csv", 'id,n,d,s\n1,"",2024-01-01,x\n2,5,"",y\n'
                   '3,6,2024-01-03,""\n')
    info, rejects = imported(rt, source, "typed", empty_as_null=False, key=key,
                             columns="id INTEGER, n INTEGER, d DATE, s VARCHAR")
    assert (info.status, info.succeeded, info.rejected) == (Status.FINISHED, 1, 2)
    assert rows(rt, "SELECT id, n, s FROM typed") == [(3, 6, "")]
    assert list(zip(rejects.line_no, rejects.column_name, rejects.reason, rejects.raw)) == [
        (2, "n", "cast error", '1,"",2024-01-01,x'), (3, "d", "cast error", '2,5,"",y')]
    assert 'Could not convert string "" to' in rejects.message[0]
    assert 'Could not convert string "" to' in rejects.message[1]


def test_sniffed_columns_with_kept_empty_fields_are_text(rt, tmp_path):
    source = write(tmp_path / "empty.csv", SPECTRUM)
    info, _ = imported(rt, source, "kept", columns=None, empty_as_null=False)
    assert info.status is Status.FINISHED
    assert rows(rt, "SELECT * FROM kept ORDER BY a") == [(1, "", ""), (2, "3", "4")]
    with pytest.raises(JobobsError, match="empty_as_null must be true or false"):
        ImportOptions("x.csv", "t", empty_as_null="no")


# -- one rejected line, one error --------------------------------------------------------

@pytest.mark.parametrize("key", [[], ["a"]], ids=["one pass", "staged"])
def test_a_line_too_long_is_not_paired_with_another_error_s_column(rt, tmp_path, key):
    """Past DuckDB's maximum line size (2,000,000 bytes) a line's first error has no
    column; its second (a stray quote in b) has one, which must not be taken with it."""
    long = '1,"ab"' + "x" * 2_100_000 + ",3"
    source = write(tmp_path / "long.csv", f"a,b,c\n1,2,3\n{long}\n4,5,6\n")
    info, rejects = imported(rt, source, "long", key=key,
                             columns={"a": "INTEGER", "b": "VARCHAR", "c": "INTEGER"})
    assert (info.status, info.succeeded, info.rejected) == (Status.FINISHED, 2, 1)
    assert list(zip(rejects.line_no, rejects.column_name, rejects.reason)) == [
        (3, None, "line too long")]
    assert rejects.raw[0].startswith('1,"ab"xxx')
    message = rejects.message[0]
    assert "Maximum line size" in message and "unterminated quote" in message


def test_lines_rejected_takes_reason_column_and_raw_from_the_first_error(tmp_path):
    from jobobs.kinds.sources import lines_rejected

    source = write(tmp_path / "m.csv", 'a,b,c\n1,2,3\n1,"ab"c,3\nx,2\n')
    con = duckdb.connect()
    con.execute(f"""SELECT * FROM read_csv('{source}', columns={{'a': 'INT', 'b': 'VARCHAR',
        'c': 'INT'}}, auto_detect=false, header=true, store_rejects=true, max_line_size=9,
        rejects_table='errors')""").fetchall()
    assert con.execute(f"SELECT * FROM ({lines_rejected(source, 'errors')}) "
                       "ORDER BY line").fetchall() == [
        (source, 3, None, "line too long", '1,"ab"c,3',
         "Maximum line size of 9 bytes exceeded. Actual Size:9 bytes.; Value with "
         "unterminated quote found."),
        (source, 4, "a", "cast error", "x,2",
         "Error when converting column \"a\". Could not convert string \"x\" to 'INTEGER'; "
         "Expected Number of Columns: 3 Found: 2")]


# -- --bad-values on the command line -------------------------------------------------------

@pytest.mark.parametrize(("flags", "expected"), [
    ([], "reject"),
    (["--bad-values", "ignore"], "ignore"),
    (["--bad-values", "stop"], "stop"),
    (["--bad-values", "amount=ignore"], {"amount": "ignore"}),
    (["--bad-values", "amount=stop", "--bad-values", "ignore"],
     {"amount": "stop", "*": "ignore"}),
    (["--bad-values", "first name=ignore", "--bad-values", "id=reject"],
     {"first name": "ignore", "id": "reject"}),
])
def test_bad_values_from_the_command_line_are_stored_with_the_job(db, tmp_path, flags,
                                                                  expected):
    source = write(tmp_path / "ok.csv", "id,amount,first name\n1,2.5,ann\n")
    code, out = cli("import", source, "--table", "t", "--db", db, "--json", "--columns",
                    'id INTEGER, amount DECIMAL(12,2), "first name" VARCHAR', *flags)
    assert code in (0, 1), out  # the policies' work is tested with imports' rejects
    assert stored(db, json.loads(out)["id"])["bad_values"] == expected


@pytest.mark.parametrize(("flags", "code", "message"), [
    (["--bad-values", "skip"], 2, "'skip' is not POLICY or COLUMN=POLICY"),
    (["--bad-values", "amount=skip"], 2, "'amount=skip' is not POLICY or COLUMN=POLICY"),
    (["--bad-values", "=ignore"], 2, "'=ignore' is not POLICY or COLUMN=POLICY"),
    (["--bad-values", "amount="], 2, "'amount=' is not POLICY or COLUMN=POLICY"),
    (["--bad-values", "ignore", "--bad-values", "stop"], 2,
     "a policy for every column is given twice"),
    (["--bad-values", "id=ignore", "--bad-values", "id=stop"], 2,
     "a policy for 'id' is given twice"),
    (["--bad-values", "nope=ignore"], 1, "bad_values names 'nope', which is not among"),
])
def test_a_bad_bad_values_is_one_line(db, tmp_path, flags, code, message):
    source = write(tmp_path / "ok.csv", "id,amount\n1,2.5\n")
    exit_code, out = cli("import", source, "--table", "t", "--db", db, "--columns",
                         "id INTEGER, amount DECIMAL(12,2)", *flags)
    assert exit_code == code and message in out and "Traceback" not in out
