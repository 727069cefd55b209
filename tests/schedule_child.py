"""Run by reliability/test_schedule_crash.py in its own process: a runtime that runs
schedules on a clock this script sets. It adds the interval schedule ``tick`` at
``start``, moves its clock one second past the first tick, and kills itself with SIGKILL:

- ``committed``: once the tick's job and the schedule's row are committed and the job runs
  (it prints the job's id first);
- ``unflushed``: inside the flush that would write the tick's job, before anything of it
  is written (it prints ``killed in the flush`` first).

Arguments: the database, the mode, the start (epoch seconds), the interval (seconds), the
job's function (``module:function``) and its arguments.
"""

import os
import signal
import sys
import threading

import jobobs
from jobobs.access.submissions import python_spec
from jobobs.testing import wait_until

NAME = "tick"


def kill(message: str) -> None:
    print(message, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def die_in_the_flush(rt: jobobs.Runtime) -> None:
    """Kill this process when a flush is about to write a new job: the tick's, made in
    memory with the schedule's moved row, neither yet written."""
    write = rt.store.write

    def write_or_die(**batch):
        if batch.get("new_jobs"):
            kill("killed in the flush")
        return write(**batch)

    rt.store.write = write_or_die


def committed_job(rt: jobobs.Runtime) -> int | None:
    """The tick's job, once it and its start are committed."""
    row = rt.store.reader().execute(
        "SELECT id FROM jobs WHERE schedule = ? AND status = 'running'", [NAME]).fetchone()
    return None if row is None else row[0]


def main() -> None:
    db, mode, start, every, function, *args = sys.argv[1:]
    now = [float(start)]
    rt = jobobs.Runtime(db, workers=2, run_schedules=True, clock=lambda: now[0])
    outcome, _ = rt.schedules.apply({"verb": "add", "name": NAME, "every": float(every),
                                     "spec": python_spec(function, *args)}, "test")
    assert outcome == "added", outcome
    rt.flush()
    if mode == "unflushed":
        die_in_the_flush(rt)
    now[0] = float(start) + float(every) + 1
    rt.loop.wake()
    if mode == "committed":
        kill(str(wait_until(lambda: committed_job(rt), 60, message="the tick's job")))
    threading.Event().wait(60)  # the flush kills this process before
    sys.exit("the tick's job was never flushed")


main()
