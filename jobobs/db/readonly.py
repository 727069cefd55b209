"""Read-only SQL: what ``Client.sql``, the analysts' route and an export's query accept.

DuckDB's own parser decides, never string matching. A query is read-only when it is one
statement of a reading kind (SELECT, which covers FROM-first queries, VALUES, DESCRIBE,
SUMMARIZE, SHOW and the PRAGMAs DuckDB rewrites into a SELECT; or a plain EXPLAIN of one
such query) and its parse tree (``json_serialize_sql``), subqueries, CTEs, set operations
and lambdas included, names only:

- functions that compute: DuckDB's built-in scalar, aggregate and window functions and
  macros (those of a fresh in-memory database, so no extension's, no user's), less the few
  with side effects or that reveal the server (``DENIED``), called unqualified;
- table functions of a short list (``TABLE_FUNCTIONS``): ranges, ``unnest``, JSON and the
  catalog's own description of itself. Everything that reads files (``read_csv``,
  ``read_text``, ``glob``...), reaches servers (``quack_*``), runs other SQL (``query``)
  or writes (``checkpoint``) is refused because it is not on the list;
- tables and views of this database by name: no other catalog (an attached file), no name
  a replacement scan would read as a file or URL (``FROM 'data.csv'``), no system view but
  the catalog's description (``pg_settings`` shows settings).

>>> check("SELECT name, avg(duration_s) FROM job_runs GROUP BY name")
>>> check("FROM read_text('/etc/shadow')")
Traceback (most recent call last):
jobobs.model.errors.QueryRefused: a read-only query cannot call read_text()
"""

from __future__ import annotations

import functools
import json
import re
import threading
from typing import Any

import duckdb

from jobobs.model.errors import JobobsError, QueryRefused, one_line

TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "repeat", "json_each", "json_tree",
    "duckdb_tables", "duckdb_views", "duckdb_columns", "duckdb_schemas", "duckdb_types",
    "duckdb_constraints", "duckdb_indexes", "duckdb_functions", "duckdb_keywords",
    "pragma_table_info",
})
# Built-ins that change state (sequences, the random seed, the log), wait on purpose, read
# settings or plan another query (binding ``read_csv`` reads the file).
DENIED = frozenset({"nextval", "currval", "setval", "setseed", "write_log", "sleep_ms",
                    "pg_sleep", "current_setting", "json_serialize_plan"})
SCALAR_FORMS = frozenset({"unnest"})  # a table function DuckDB also takes in a select list
SYSTEM_VIEWS = frozenset({"duckdb_tables", "duckdb_views", "duckdb_columns", "duckdb_schemas",
                          "duckdb_types", "duckdb_constraints", "duckdb_indexes"})
SCHEMAS = ("", "main", "information_schema")
SHOWN = ('"tables"', '"databases"', "__show_tables_expanded")  # SHOW TABLES, ALL, databases
# What a replacement scan needs to take a name for a file or URL: an extension, a path,
# a scheme or a glob. A table name without them is looked up in the catalog only.
PATHLIKE = re.compile(r"[./\\:*?\[\]{}~]")
# Parse-tree nodes that are structure, not something read or called.
STRUCTURE = frozenset({
    "SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE", "JOIN",
    "SUBQUERY", "EMPTY", "EXPRESSION_LIST", "PIVOT", "ORDER_MODIFIER", "LIMIT_MODIFIER",
    "LIMIT_PERCENT_MODIFIER", "DISTINCT_MODIFIER", "ORDER_DEFAULT", "ASCENDING",
    "DESCENDING",
})

_parser: duckdb.DuckDBPyConnection | None = None
_lock = threading.Lock()


def check(query: str, *, explain: bool = True) -> str:
    """The statement to run if ``query`` only reads (exactly the text that was checked);
    else raise QueryRefused naming what it would do (JobobsError with DuckDB's message when
    it does not parse). ``explain=False`` refuses EXPLAIN too (an export's query)."""
    statements = _statements(query)
    if len(statements) != 1:
        raise QueryRefused(f"a read-only query is one statement, not {len(statements)}")
    statement = statements[0]
    if statement.type == duckdb.StatementType.EXPLAIN and explain:
        inner = _explained(statement.query)
        _check_tree(inner)
        return f"EXPLAIN {inner}"
    elif statement.type == duckdb.StatementType.SELECT:
        _check_tree(statement.query)
        return statement.query
    else:
        raise QueryRefused(f"a read-only query cannot be {_a(statement.type.name)} statement")


def _statements(query: str) -> list[Any]:
    if not isinstance(query, str) or not query.strip():
        raise JobobsError("give a query")
    try:
        return duckdb.extract_statements(query)
    except duckdb.Error as error:
        raise JobobsError(one_line(error)) from None


def _explained(text: str) -> str:
    """The statement a plain ``EXPLAIN`` shows: the text from the token after EXPLAIN
    (DuckDB's tokenizer skips comments), if that is one SELECT on its own."""
    tokens = duckdb.tokenize(text)
    if len(tokens) < 2:
        raise QueryRefused("a read-only query cannot be an EXPLAIN of nothing")
    inner = text.encode()[tokens[1][0]:].decode()  # the tokenizer counts bytes
    try:
        statements = duckdb.extract_statements(inner)
    except duckdb.Error:
        statements = []
    if len(statements) == 1 and statements[0].type == duckdb.StatementType.SELECT:
        return statements[0].query
    word = inner.split(None, 1)[0].upper() if inner.split() else ""  # for the message only
    if word.startswith("(") or word in ("ANALYZE", "ANALYSE"):
        raise QueryRefused("a read-only query cannot be EXPLAIN ANALYZE (it runs the "
                           "statement) or EXPLAIN with options")
    kind = statements[0].type.name if len(statements) == 1 else "non-query"
    raise QueryRefused(f"a read-only query cannot be an EXPLAIN of {_a(kind)} statement")


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'AEIOU' else 'a'} {word}"


def _check_tree(text: str) -> None:
    try:
        tree = json.loads(_serialize(text))
        if tree.get("error"):
            raise QueryRefused(f"a read-only query cannot be this statement "
                               f"({tree.get('error_message')})")
        _walk(tree["statements"])
    except RecursionError:
        raise QueryRefused("a read-only query cannot be nested this deeply") from None


def _serialize(text: str) -> str:
    global _parser
    with _lock:
        if _parser is None:
            _parser = duckdb.connect()
        return _parser.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0]


def _walk(node: Any) -> None:
    """Check every function called and every table read in a parse tree (a JSON value)."""
    if isinstance(node, list):
        for item in node:
            _walk(item)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if "class" in node:  # an expression
        if node["class"] in ("FUNCTION", "WINDOW"):
            _function(node, table=False)
    elif kind == "TABLE_FUNCTION":
        _function(node["function"], table=True)
        _walk([v for k, v in node["function"].items() if k not in ("class", "type")])
        _walk([v for k, v in node.items() if k != "function"])
        return
    elif kind == "BASE_TABLE":
        _table(node)
    elif kind == "SHOW_REF":
        if node.get("query") is None and node.get("table_name") not in SHOWN:
            raise QueryRefused(f"a read-only query cannot SHOW {node.get('table_name')}")
    elif isinstance(kind, str) and kind not in STRUCTURE and not kind.endswith("_TYPE_INFO"):
        raise QueryRefused(f"a read-only query cannot use {kind.lower().replace('_', ' ')}")
    _walk([value for value in node.values() if isinstance(value, (dict, list))])


def _function(node: dict[str, Any], table: bool) -> None:
    name = str(node.get("function_name", "")).lower()
    qualifier = ".".join(p for p in (node.get("catalog"), node.get("schema")) if p)
    if qualifier not in ("", "main"):  # the parser writes main. before some built-ins
        raise QueryRefused(f"a read-only query cannot call {qualifier}.{name}()")
    if table:
        if name not in TABLE_FUNCTIONS:
            raise QueryRefused(f"a read-only query cannot call {name}()")
    elif name not in _computing():
        raise QueryRefused(f"a read-only query cannot call {name}()" + (
            "" if name in DENIED else " (not one of DuckDB's built-in functions)"))


def _table(node: dict[str, Any]) -> None:
    catalog, schema = node.get("catalog_name") or "", node.get("schema_name") or ""
    name = node.get("table_name") or ""
    shown = ".".join(p for p in (catalog, schema, name) if p)
    if catalog or schema.lower() not in SCHEMAS:
        raise QueryRefused(f"a read-only query cannot read {shown}: only this database's "
                           "tables (unqualified or main.)")
    if PATHLIKE.search(name):
        raise QueryRefused(f"a read-only query cannot read {name!r}: not a table name (a "
                           "file or URL?)")
    if schema.lower() in ("", "main") and name.lower() in _system_views():
        raise QueryRefused(f"a read-only query cannot read the system view {name}")


@functools.cache
def _computing() -> frozenset[str]:
    """DuckDB's own scalar, aggregate and window functions and macros, by lower-case name,
    less ``DENIED``."""
    with duckdb.connect() as con:
        rows = con.execute("""SELECT DISTINCT lower(function_name) FROM duckdb_functions()
                              WHERE function_type IN ('scalar', 'aggregate', 'macro')""")
        return (frozenset(name for (name,) in rows.fetchall()) | SCALAR_FORMS) - DENIED


@functools.cache
def _system_views() -> frozenset[str]:
    """Views DuckDB keeps in its system catalog that a bare name reaches, less the ones
    that describe the catalog (``SYSTEM_VIEWS``)."""
    with duckdb.connect() as con:
        rows = con.execute("""SELECT DISTINCT lower(view_name) FROM duckdb_views()
                              WHERE internal AND schema_name IN ('main', 'pg_catalog')""")
        return frozenset(name for (name,) in rows.fetchall()) - SYSTEM_VIEWS
