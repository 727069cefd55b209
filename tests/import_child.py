"""Run by test_import_crash.py in its own process: start an import, say when it is under
way, then wait until the test kills this process."""

import sys
import time

import jobobs
from jobobs.kinds import importing

db, source, on_failure, ready = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rt = jobobs.Runtime(db, workers=1)
job = importing.submit(rt, source, "big", on_failure=on_failure, chunk_rows=50_000,
                       max_rejects=None,
                       columns={"id": "BIGINT", "name": "VARCHAR", "score": "INTEGER"})
deadline = time.monotonic() + 60
while not (rt.job(job.id).succeeded > 0 if ready == "loading" else
           rt.status(job.id).value == "running") and time.monotonic() < deadline:
    time.sleep(0.002)
rt.flush()  # written before another process hears of it
print(job.id, flush=True)
rt.wait(job.id)
