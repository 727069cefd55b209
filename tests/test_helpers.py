"""The small helpers every layer shares: SQL literals hold exactly their value, a file is
written whole or not at all, an error is one line, and the counters have one list."""

import datetime as dt
import math
import os
import stat
import struct
from decimal import Decimal

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobobs.access import queries, users
from jobobs.db import files
from jobobs.db.schema import JOB_COLUMNS
from jobobs.db.sql import literal
from jobobs.db.store import Store
from jobobs.model.errors import JobobsError, one_line
from jobobs.model.rows import COUNTERS

CON = duckdb.connect()


def selected(value):
    return CON.execute(f"SELECT {literal(value)}").fetchone()[0]


def same_float(one, other):
    return (math.isnan(one) and math.isnan(other)) or (
        struct.pack("<d", one) == struct.pack("<d", other))


# -- literal() ---------------------------------------------------------------------------


@pytest.mark.parametrize("number", [
    0.1, 1e300, -1e-300, 5e-324, 1.7976931348623157e308, -0.0, 0.0,
    0.21409471554218742, -0.9135572687519967,  # 17 digits: SQL's DECIMAL-first parse misses
    float("nan"), float("inf"), float("-inf"),
])
def test_a_float_comes_back_the_same_double(number):
    assert CON.execute(f"SELECT typeof({literal(number)})").fetchone()[0] == "DOUBLE"
    assert same_float(selected(number), number)


@given(st.floats())
def test_any_float_comes_back_bit_for_bit(number):
    assert same_float(selected(number), number)


@pytest.mark.parametrize("number, kind", [
    (Decimal("1.23456"), "DECIMAL(6,5)"), (Decimal("0.05"), "DECIMAL(2,2)"),
    (Decimal("1E+5"), "DECIMAL(6,0)"), (Decimal("-12.50"), "DECIMAL(4,2)"),
    (Decimal("0." + "1" * 38), "DECIMAL(38,38)"),
])
def test_a_decimal_keeps_every_digit_and_its_scale(number, kind):
    assert CON.execute(f"SELECT typeof({literal(number)})").fetchone()[0] == kind
    assert selected(number) == number


def test_a_decimal_wider_than_duckdb_holds_is_a_double_and_nan_stays_nan():
    assert selected(Decimal("1" * 40)) == float("1" * 40)
    assert math.isnan(selected(Decimal("NaN")))


@pytest.mark.parametrize("value", [
    None, True, False, 0, -5, 2**63 - 1, -(2**63), "", "it's", "'; DROP TABLE x; --",
    "a\x00b", "naïve ☃", dt.date(2024, 2, 29), dt.datetime(2024, 1, 2, 3, 4, 5, 6),
    dt.time(23, 59, 59, 999999), dt.timedelta(days=-1, microseconds=5), [1, None, 3],
])
def test_a_value_comes_back_as_bound_with_the_type_duckdb_binds(value):
    assert selected(value) == value
    assert CON.execute(f"SELECT typeof({literal(value)})").fetchone() == (
        CON.execute("SELECT typeof(?)", [value]).fetchone())


def test_a_time_zone_is_kept():
    moment = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert CON.execute(f"SELECT epoch_us({literal(moment)})").fetchone()[0] == (
        int(moment.timestamp()) * 1_000_000)


def test_a_negative_number_after_a_minus_is_no_comment():
    assert CON.execute(f"SELECT 10-{literal(-5)}, 10-{literal(-0.5)}").fetchone() == (15, 10.5)


def test_a_value_sql_cannot_hold_is_refused():
    with pytest.raises(JobobsError, match="object"):
        literal(object())


# -- writing a file whole ------------------------------------------------------------------


def test_a_private_write_that_fails_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "endpoint.json"
    files.write_private(str(target), "old")
    with pytest.raises(UnicodeEncodeError):
        files.write_private(str(target), "new \udce9")  # fails while it is written
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["endpoint.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_writer_that_fails_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    con = duckdb.connect()
    with pytest.raises(duckdb.Error, match="boom"), files.replacing(str(target)) as temporary:
        con.execute(f"COPY (SELECT error('boom') AS a FROM range(3)) TO {literal(temporary)}"
                    " (HEADER, USE_TMP_FILE false)")
    with pytest.raises(RuntimeError), files.replacing(str(target)) as temporary:
        con.execute(f"COPY (SELECT 1 AS a) TO {literal(temporary)} (USE_TMP_FILE false)")
        raise RuntimeError("after the file was written")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_the_users_file_is_written_whole_and_the_owners_only(tmp_path):
    path = tmp_path / "users.json"
    users.set_password(str(path), "ann", "correct horse", role="operator")
    users.set_password(str(path), "bob", "battery staple")
    assert set(users.read(str(path))) == {"ann", "bob"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["users.json"]


# -- one line ---------------------------------------------------------------------------------


def test_an_error_is_its_first_line_that_says_something():
    assert one_line(ValueError("\n  Binder Error: no such column  \nLINE 1: SELECT x\n")) == (
        "Binder Error: no such column")
    assert one_line(KeyError()) == "KeyError"
    assert one_line(RuntimeError("   \n ")) == "RuntimeError"
    assert one_line("first\nsecond") == "first"
    assert one_line("") == ""


# -- the counters ----------------------------------------------------------------------------


def test_every_counter_is_a_column_and_listed_with_the_jobs(tmp_path):
    assert set(COUNTERS) <= set(JOB_COLUMNS)
    store = Store(str(tmp_path / "jobs.duckdb"))
    try:
        assert set(COUNTERS) <= set(queries.jobs(store.reader()).columns)
    finally:
        store.close()
