import shutil

import pytest
from serving import Server

import jobobs


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test with a server among its fixtures shows the end of the server's output
    (its log, and on a Dask cluster the workers' errors)."""
    report = (yield).get_result()
    if report.when != "call" or not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        for server in value if isinstance(value, tuple) else (value,):
            if isinstance(server, Server):
                tail = server.output().splitlines()[-40:]
                report.sections.append(("jobobs serve's output, last lines", "\n".join(tail)))


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "jobs.duckdb")


@pytest.fixture(scope="session")
def migrated(tmp_path_factory):
    """The file a runtime makes for a new database, made once: ``rt`` starts from a copy, as
    migrating a new file is most of a runtime's start (test_schema tests migrating)."""
    path = str(tmp_path_factory.mktemp("migrated") / "jobs.duckdb")
    jobobs.Runtime(path, workers=1, handle_signals=False).close()
    return path


@pytest.fixture
def new_db(db, migrated):
    """A new database file, as a runtime makes one (a copy, with its owner-only mode)."""
    shutil.copy2(migrated, db)
    return db


@pytest.fixture
def rt(new_db):
    runtime = jobobs.Runtime(new_db, workers=2, handle_signals=False)
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory):
    """A database the demo generator built (small), with its data folder: for the
    notebooks, the SQL examples and the demo's own tests."""
    from click.testing import CliRunner

    from jobobs.cli import main

    folder = tmp_path_factory.mktemp("demo")
    db = str(folder / "demo.duckdb")
    result = CliRunner().invoke(main, ["demo", "--no-serve", "--db", db, "--data",
                                       str(folder / "data"), "--scale", "0.02"])
    assert result.exit_code == 0, result.output
    return db


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's), one per test module. An ``expect`` waits up to 20 s
    unless told (Playwright's 5 s is short for a busy machine): a page that shows what is
    expected passes at once, whatever the bound."""
    from playwright.sync_api import expect, sync_playwright
    from serving import chromium

    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        launched = chromium(playwright)
        yield launched
        launched.close()
