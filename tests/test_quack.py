"""Query parameters sent to a server are rendered as literals: any value round-trips, and
placeholders inside quotes and comments are left alone."""

import datetime as dt
from decimal import Decimal

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobobs.db.quack import bind
from jobobs.model.errors import JobobsError

CON = duckdb.connect()


@given(st.text())
def test_any_text_round_trips(text):
    assert CON.execute(bind("SELECT ?", [text])).fetchone()[0] == text


@given(st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),
                 st.booleans(), st.none(), st.datetimes(), st.dates(),
                 st.lists(st.integers(-1000, 1000), max_size=5)))
def test_values_round_trip(value):
    assert CON.execute(bind("SELECT ?", [value])).fetchone()[0] == value


def test_placeholders_in_quotes_and_comments_are_not_parameters():
    sql = "SELECT '?' AS a, \"?\" AS b, ? AS c -- ?\n /* ? */"
    assert CON.execute(bind(sql.replace('"?"', "1"), [5])).fetchone() == ("?", 1, 5)
    assert bind("SELECT 'it''s ?', ?", [1]) == "SELECT 'it''s ?', (1)"
    assert CON.execute(bind("SELECT 10-?", [-5])).fetchone()[0] == 15  # not "10--5"


def test_other_values():
    assert CON.execute(bind("SELECT ?", [Decimal("1.25")])).fetchone()[0] == Decimal("1.25")
    assert CON.execute(bind("SELECT ?", [dt.timedelta(seconds=90)])).fetchone()[0] == (
        dt.timedelta(seconds=90))
    with pytest.raises(JobobsError, match="2 parameters"):
        bind("SELECT ?", [1, 2])
    with pytest.raises(JobobsError, match="more placeholders"):
        bind("SELECT ?, ?", [1])
    with pytest.raises(JobobsError, match="cannot be sent"):
        bind("SELECT ?", [object()])
