import pytest

import jobobs


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "jobs.duckdb")


@pytest.fixture
def rt(db):
    runtime = jobobs.Runtime(db, workers=2, handle_signals=False)
    yield runtime
    runtime.close()
