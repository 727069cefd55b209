"""Property: any sequence of requests from any number of clients leaves every job in a legal
status, with a written history that replays to that status."""

import tempfile
import time
from pathlib import Path

import jobs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobobs
from jobobs import IllegalRequest, Status
from jobobs.model.states import check_transition

REQUESTS = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["start", "pause", "resume", "cancel"]),
              st.sampled_from(["runtime", "table"]), st.floats(0, 0.02)),
    max_size=12)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REQUESTS)
def test_requests_leave_legal_statuses_and_replayable_histories(requests):
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "p.duckdb")
        with jobobs.Runtime(db, workers=2, handle_signals=False) as rt:
            ids = [rt.submit(jobs.steps, 30, 0.002).id, rt.submit(jobs.noop, start=False).id,
                   rt.submit(jobs.steps, 30, 0.002).id]
            for index, command, client, pause in requests:
                job_id = ids[index]
                if client == "runtime":
                    try:
                        rt.request(job_id, command, by="api")
                    except IllegalRequest:
                        pass
                else:  # another client writes the commands table directly, unchecked
                    rt.store.request(job_id, command, by="other", now=time.time())
                time.sleep(pause)
            for job_id in ids:  # bring everything to rest
                if rt.wait(job_id, timeout=20).status not in (
                        Status.FINISHED, Status.CANCELED, Status.FAILED):
                    rt.cancel(job_id)
            rt.run_until_idle(timeout=20)
            for job_id in ids:
                history = rt.store.reader().execute(
                    "SELECT seq, from_status, to_status FROM job_transitions WHERE job_id = ? "
                    "ORDER BY seq", [job_id]).fetchall()
                assert [seq for seq, _, _ in history] == list(range(1, len(history) + 1))
                current = None
                for _, old, new in history:
                    assert old == current
                    if old is not None:
                        check_transition(job_id, old, new)
                    current = new
                assert Status(current) is rt.job(job_id).status
                assert rt.job(job_id).status in (Status.FINISHED, Status.CANCELED)
