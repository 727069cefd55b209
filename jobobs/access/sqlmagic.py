"""SQL cells in notebooks: ``%%jobobs_sql`` answers a read-only query over the history.

    %load_ext jobobs.access.sqlmagic              # jobobs.notebook() does this too

    %%jobobs_sql -o failed
    SELECT name, count(*) AS failures FROM jobs
    WHERE status = 'failed' AND finished_at >= $since
    GROUP BY name ORDER BY failures DESC

The query goes through ``jobobs.connect()`` (the server when one runs for the database,
else the file) and ``Client.sql``, so it only reads, as ``jobobs sql`` does. ``$name`` takes
the notebook's variable ``name`` as a bound parameter, never pasted into the SQL text. The
cell's value is the DataFrame; ``-o NAME`` also keeps it in a variable. ``--db PATH`` picks
the database (default ``$JOBOBS_DB``, then ``jobobs.duckdb``, as ``connect`` does). A query
that does not parse, names what is not there or would write shows one line (IPython's
``UsageError``), not a traceback. ``%jobobs_sql SELECT ...`` is the one-line form.

A process runs one runtime per file: when the notebook holds one on the database (a
``Runtime``, or a client of the file), the cells use it; when the cells opened their own,
``%unload_ext jobobs.access.sqlmagic`` closes it.

IPython is not a dependency of jobobs: it is imported only when a shell registers the magic.
"""

from __future__ import annotations

import atexit
import os
import re
import shlex
from collections.abc import Mapping
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import duckdb

from jobobs.access.client import DEFAULT_DB, Client, connect
from jobobs.execution.runtime import Runtime
from jobobs.model.errors import JobobsError, one_line

if TYPE_CHECKING:
    import pandas as pd

NAME = "jobobs_sql"
OPTION = re.compile(r"(-o|--out|--db)(?:=|\s+)(\"[^\"]*\"|'[^']*'|\S+)\s*")
IDENTIFIER = re.compile(r"\w+")
OPERATOR = duckdb.token_type.operator
NAMES = (duckdb.token_type.identifier, duckdb.token_type.keyword)  # a keyword is a name after $


class SqlCells:
    """The magic of one shell, and the clients it opened: one per database, reused from cell
    to cell, closed with ``close()`` (at exit, or ``%unload_ext``)."""

    def __init__(self, shell: Any):
        self.shell = shell
        self.clients: dict[str, Client] = {}

    def cell(self, line: str, cell: str) -> pd.DataFrame:
        """%%jobobs_sql [--db PATH] [-o NAME]: the cell's read-only query over the job
        history as a DataFrame; ``-o NAME`` keeps it in a variable too.

        ``$name`` in the query takes the variable ``name`` as a bound parameter. The one-line
        form: ``%jobobs_sql [--db PATH] [-o NAME] SELECT ...``.
        """
        return self(line, cell)

    def __call__(self, line: str, cell: str | None = None) -> pd.DataFrame:
        from IPython.core.error import UsageError

        options, rest = parse(line)
        query = rest if cell is None else cell
        if cell is not None and rest:
            raise UsageError(f"%%{NAME} takes only --db PATH and -o NAME on its line, not "
                             f"{rest!r}")
        if not query.strip():
            raise UsageError(f"{NAME}: give a query (SELECT ..., FROM ..., DESCRIBE ...)")
        try:
            sql, params = bound(query, self.shell.user_ns)
            frame = self.client(options.get("db")).sql(sql, params)
        except (JobobsError, duckdb.Error) as error:
            raise UsageError(message(error)) from None
        if options.get("out"):
            self.shell.user_ns[options["out"]] = frame
        return frame

    def client(self, db: str | None) -> Client:
        """The client for ``db``: the one opened before, else ``connect(db)``; when this
        process already runs a runtime on the file (a notebook's ``Runtime`` or file
        client), a client of that runtime."""
        path = db or os.environ.get("JOBOBS_DB") or DEFAULT_DB
        if path in self.clients:
            return self.clients[path]
        try:
            self.clients[path] = connect(path)
        except JobobsError:
            here = self.open_here(path)
            if here is None:
                raise
            return here
        return self.clients[path]

    def open_here(self, path: str) -> Client | None:
        """A client of the open runtime on ``path`` that a notebook variable holds."""
        key = os.path.realpath(path)
        for value in list(self.shell.user_ns.values()):
            if isinstance(value, Runtime) and not value.closed and (
                    os.path.realpath(value.store.path) == key):
                return Client.embedded(value)
            if isinstance(value, Client) and not value.served and (
                    os.path.realpath(value.where) == key):
                return value
        return None

    def close(self) -> None:
        while self.clients:
            self.clients.popitem()[1].close()


def parse(line: str) -> tuple[dict[str, str], str]:
    """The options at the start of a magic's line (``--db PATH``, ``-o NAME``), and the
    rest of it verbatim (the query of the one-line form)."""
    from IPython.core.error import UsageError

    options: dict[str, str] = {}
    rest = line.strip()
    while rest.startswith("-"):
        found = OPTION.match(rest)
        if found is None:
            raise UsageError(f"{NAME} takes --db PATH and -o NAME, not {rest.split()[0]!r}")
        flag, value = found.groups()
        options["db" if flag == "--db" else "out"] = shlex.split(value)[0]
        rest = rest[found.end():]
    if options.get("out") and not options["out"].isidentifier():
        raise UsageError(f"-o takes a variable name, not {options['out']!r}")
    return options, rest


def bound(query: str, variables: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``query`` with each ``$name`` (outside strings and comments, as DuckDB's tokenizer
    reads it) made a ``?`` placeholder, and the variables' values in that order."""
    data = query.encode()  # the tokenizer counts bytes
    tokens = duckdb.tokenize(query)
    pieces, values, done = [], [], 0
    for (at, kind), (name_at, name_kind) in pairwise(tokens):
        if kind != OPERATOR or data[at:name_at] != b"$" or name_kind not in NAMES:
            continue
        found = IDENTIFIER.match(data[name_at:].decode())
        if found is None:  # a quoted name: left to DuckDB, which asks for its value
            continue
        name = found.group()
        if name not in variables:
            raise JobobsError(f"the query takes ${name}, but there is no variable {name}")
        pieces += [data[done:at], b"?"]
        values.append(variables[name])
        done = name_at + len(name.encode())
    return b"".join([*pieces, data[done:]]).decode(), values


def message(error: BaseException) -> str:
    """An error as one line: DuckDB's message and its hint (``Did you mean "jobs"?``),
    without the query it quotes back."""
    text = str(error).strip()
    first = text.split("\n\n", 1)[0]
    return " ".join(line.strip() for line in first.splitlines() if line.strip()) or one_line(
        error)


def register(shell: Any) -> SqlCells:
    """Give ``shell`` (``get_ipython()``) the ``%%jobobs_sql`` cell magic and its one-line
    form ``%jobobs_sql``; their clients close at exit. Registering again changes nothing.

    IPython expands ``{var}`` and ``$var`` on the cell magic's line, as for any magic
    (``--db {path}``); never in a query, where ``$name`` is a bound parameter."""
    from IPython.core.magic import no_var_expand

    cells = registered(shell)
    if cells is None:
        cells = SqlCells(shell)

        def line_form(line: str) -> pd.DataFrame:
            return cells(line)

        line_form.__doc__ = cells.cell.__doc__

        shell.register_magic_function(cells.cell, magic_kind="cell", magic_name=NAME)
        shell.register_magic_function(no_var_expand(line_form), magic_kind="line",
                                      magic_name=NAME)
        atexit.register(cells.close)
    return cells


def registered(shell: Any) -> SqlCells | None:
    """The SQL cells of ``shell``, when it has them."""
    found = getattr(shell.magics_manager.magics["cell"].get(NAME), "__self__", None)
    return found if isinstance(found, SqlCells) else None


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext jobobs.access.sqlmagic``."""
    register(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext jobobs.access.sqlmagic`` closes the clients the magic opened (so that
    this process can open a ``Runtime`` on the file); the next SQL cell opens one again."""
    cells = registered(shell)
    if cells is not None:
        cells.close()
