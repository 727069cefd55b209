"""``import jobobs`` and an import job load no pandas: pandas (with numpy) is most of what a
fresh process holds before it reads any data, so a DataFrame is made only where one is
asked for (the query functions, the client's questions, ``jobobs watermark``).

DuckDB's Python client imports pandas by itself the first time it binds a parameter that
is not None (it compares the value with ``pandas.NaT`` and ``pandas.NA``), so where pandas
is installed an import job loads it anyway. The job's test therefore runs where pandas
cannot be imported at all: DuckDB then skips those checks, and any use of pandas on the
job's way fails the job."""

import json
import subprocess
import sys

IMPORT_JOB = """
import json, sys
sys.modules["pandas"] = None  # as if it were not installed
import jobobs
from jobobs.kinds import importing

source, db = sys.argv[1], sys.argv[2]
with jobobs.Runtime(db, workers=1, handle_signals=False) as rt:
    info = importing.submit(rt, source, "t", columns={"id": "BIGINT", "score": "INTEGER"},
                            max_rejects=None).wait(timeout=60)
    rows = rt.store.reader().execute("SELECT count(*) FROM t").fetchone()[0]
print(json.dumps({"status": info.status.value, "error": info.error, "rows": rows,
                  "rejected": info.rejected}))
"""


def run(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_jobobs_loads_no_pandas():
    loaded = run("import json, sys, jobobs; "
                 "print(json.dumps(sorted(m for m in sys.modules if m.startswith('pandas'))))")
    assert loaded == []


def test_an_import_job_runs_where_pandas_cannot_be_imported(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,score\n1,5\n2,not a number\n3,7\n")
    outcome = run(IMPORT_JOB, str(source), str(tmp_path / "jobs.duckdb"))
    assert outcome == {"status": "finished", "error": None, "rows": 2, "rejected": 1}
