"""Run by test_crash.py in its own process: submit a job, say when it is well under way,
then wait (until the test kills or stops this process). SIGINT is Python's default, or
ignored as in a shell's background job."""

import signal
import sys
import time

import jobs

import jobobs

db, count, ready_at, sigint = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
signal.signal(signal.SIGINT, signal.SIG_IGN if sigint == "ignored" else signal.default_int_handler)
rt = jobobs.Runtime(db, workers=2)
job = rt.submit(jobs.steps, count, 0.004, 7)
while rt.job(job.id).processed < ready_at:
    time.sleep(0.005)
rt.flush()
print(job.id, flush=True)
rt.wait(job.id)
print("finished", flush=True)
