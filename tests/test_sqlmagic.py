"""SQL cells: ``%%jobobs_sql`` in a real IPython shell, over a history a real runtime wrote,
on the file and through a served ``jobobs serve``."""

import jobs
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from serving import Server
from traitlets.config import Config

import jobobs
from jobobs.access import sqlmagic


def make_history(db):
    """Three finished runs of ``noop`` and two failed runs of ``boom``, in ``db``."""
    with jobobs.Runtime(db, workers=2, handle_signals=False) as rt:
        for function in (jobs.noop, jobs.noop, jobs.noop, jobs.boom, jobs.boom):
            rt.submit(function)
        rt.run_until_idle(timeout=30)
    return db


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return make_history(str(tmp_path_factory.mktemp("history") / "jobs.duckdb"))


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """A fresh IPython shell (its history in memory, its folder in ``tmp_path``), with no
    jobobs variables in the environment."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    for variable in ("JOBOBS_DB", "JOBOBS_URL", "JOBOBS_TOKEN", "JOBOBS_ANALYST_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    made = InteractiveShell(config=config)
    yield made
    cells = sqlmagic.registered(made)
    if cells is not None:
        cells.close()
    made.cleanup()


def run(shell, source):
    """Run a cell as a notebook would; its value, or the error it raised."""
    result = shell.run_cell(source)
    return result.result if result.success else result.error_in_exec


def test_load_ext_gives_the_cell_magic_and_its_one_line_form(shell):
    assert sqlmagic.registered(shell) is None
    assert shell.run_line_magic("load_ext", "jobobs.access.sqlmagic") is None
    cells = sqlmagic.registered(shell)
    assert cells is not None
    assert sqlmagic.register(shell) is cells  # again: the same, registered once
    assert "jobobs_sql" in shell.magics_manager.magics["line"]


def test_unload_ext_closes_the_clients_and_frees_the_file(shell, history):
    shell.run_line_magic("load_ext", "jobobs.access.sqlmagic")
    assert run(shell, f"%jobobs_sql --db {history} SELECT count(*) AS n FROM jobs").n[0] == 5
    with pytest.raises(jobobs.JobobsError, match="already open"):
        jobobs.Runtime(history, handle_signals=False)  # the magic's client holds the file
    shell.run_line_magic("unload_ext", "jobobs.access.sqlmagic")
    assert sqlmagic.registered(shell).clients == {}
    jobobs.Runtime(history, handle_signals=False).close()


def test_a_cell_answers_as_a_dataframe_and_o_keeps_it(shell, history, monkeypatch):
    monkeypatch.setenv("JOBOBS_DB", history)  # the default database, as connect() reads it
    sqlmagic.register(shell)
    frame = run(shell, "%%jobobs_sql -o runs\n"
                       "SELECT name, status, count(*) AS runs FROM jobs\n"
                       "GROUP BY ALL ORDER BY name")
    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict("records") == [
        {"name": "boom", "status": "failed", "runs": 2},
        {"name": "noop", "status": "finished", "runs": 3}]
    assert shell.user_ns["runs"] is frame
    assert sqlmagic.registered(shell).clients[history].where == history


def test_the_same_client_answers_every_cell(shell, history):
    cells = sqlmagic.register(shell)
    shell.user_ns["db"] = history
    for _ in range(3):
        assert run(shell, "%%jobobs_sql --db {db}\nSELECT count(*) AS n FROM jobs").n[0] == 5
    assert list(cells.clients) == [history]


def test_dollar_names_are_bound_parameters_never_pasted_into_the_query(shell, history):
    sqlmagic.register(shell)
    shell.user_ns.update(db=history, status="failed")
    query = ("%%jobobs_sql --db {db}\n"
             "SELECT name, '$status' AS text FROM jobs WHERE status = $status")
    frame = run(shell, query)
    assert frame.to_dict("records") == [{"name": "boom", "text": "$status"}] * 2
    shell.user_ns["status"] = "x' OR true OR status = '"
    assert run(shell, query).empty  # compared as one value, not read as SQL


def test_the_one_line_form_binds_too(shell, history):
    sqlmagic.register(shell)
    shell.user_ns["name"] = "noop"
    frame = run(shell, f"n = %jobobs_sql --db {history} SELECT count(*) AS n FROM jobs "
                       "WHERE name = $name\nn")
    assert frame.n[0] == 3


@pytest.mark.parametrize(("query", "says"), [
    ("SELEC name FROM jobs", 'syntax error at or near "SELEC"'),
    ("SELECT * FROM jobz", 'Table with name jobz does not exist! Did you mean "jobs"?'),
    ("SELECT * FROM jobs WHERE id = $nothing", "there is no variable nothing"),
    ("DELETE FROM jobs", "a read-only query cannot be a DELETE statement"),
    ("FROM read_text('/etc/passwd')", "a read-only query cannot call read_text()"),
])
def test_a_bad_query_is_one_line_not_a_traceback(shell, history, capsys, query, says):
    sqlmagic.register(shell)
    error = run(shell, f"%%jobobs_sql --db {history}\n{query}")
    assert isinstance(error, UsageError)
    assert says in str(error) and "\n" not in str(error)
    assert capsys.readouterr().err == f"UsageError: {error}\n"  # what the notebook shows
    assert run(shell, f"%%jobobs_sql --db {history}\nSELECT count(*) AS n FROM jobs").n[0] == 5


def test_options_are_checked(shell, history):
    sqlmagic.register(shell)
    assert "not '--limit'" in str(run(shell, "%%jobobs_sql --limit 5\nSELECT 1"))
    assert "a variable name" in str(run(shell, f"%%jobobs_sql --db {history} -o 2x\nSELECT 1"))
    assert "give a query" in str(run(shell, f"%%jobobs_sql --db {history}\n  \n"))


def test_a_notebook_runtime_on_the_file_answers_the_cells(shell, tmp_path):
    """A runtime this process already runs on the file (a notebook's): the cells use it
    rather than open a second one, which the process refuses."""
    db = str(tmp_path / "live.duckdb")
    with jobobs.Runtime(db, workers=1, handle_signals=False) as rt:
        rt.wait(rt.submit(jobs.noop).id, timeout=30)
        with pytest.raises(jobobs.JobobsError, match="already open"):
            jobobs.connect(db)
        sqlmagic.register(shell)
        shell.user_ns.update(rt=rt, db=db)
        frame = run(shell, "%%jobobs_sql --db {db}\nSELECT name, status FROM jobs")
        assert frame.to_dict("records") == [{"name": "noop", "status": "finished"}]
        assert sqlmagic.registered(shell).clients == {}  # the notebook's runtime, not its own


def test_through_a_served_jobobs(shell, tmp_path):
    served = make_history(str(tmp_path / "served.duckdb"))
    server = Server(served).wait_ready()
    try:
        cells = sqlmagic.register(shell)
        shell.user_ns.update(db=served, status="finished")
        frame = run(shell, "%%jobobs_sql --db {db} -o done\n"
                           "SELECT name, count(*) AS runs FROM jobs WHERE status = $status "
                           "GROUP BY name")
        assert frame.to_dict("records") == [{"name": "noop", "runs": 3}]
        assert shell.user_ns["done"] is frame
        assert cells.clients[served].served
        refused = run(shell, "%%jobobs_sql --db {db}\nDELETE FROM jobs")
        assert isinstance(refused, UsageError) and "DELETE" in str(refused)
        missing = run(shell, "%%jobobs_sql --db {db}\nSELECT * FROM jobz")
        assert isinstance(missing, UsageError) and "jobz does not exist" in str(missing)
        assert "\n" not in str(missing)
        assert run(shell, "%%jobobs_sql --db {db}\nSELECT count(*) AS n FROM jobs").n[0] == 5
    finally:
        cells.close()
        assert server.stop() == 0, server.output()


def test_bound_rewrites_only_placeholders():
    query = ("SELECT $a, '$a' AS s, $$ $a $$ AS d, \"$a\" -- $a\n"
             "FROM t WHERE x = $b::INT /* $b */")
    sql, values = sqlmagic.bound(query, {"a": 1, "b": "2"})
    assert sql == ("SELECT ?, '$a' AS s, $$ $a $$ AS d, \"$a\" -- $a\n"
                   "FROM t WHERE x = ?::INT /* $b */")
    assert values == [1, "2"]
