"""The jobobs dashboard as a Panel app of its own:

    panel serve dashboards/jobs.py --args --db jobs.duckdb

It goes through the server that owns the database when one runs (its discovery file, or
JOBOBS_URL and JOBOBS_TOKEN), else it opens the file. One client serves every session.
"""

import argparse
import os

import panel as pn

import jobobs
from jobobs.dashboard import app

parser = argparse.ArgumentParser(prog="dashboards/jobs.py")
parser.add_argument("--db", default=os.environ.get("JOBOBS_DB"))
arguments, _ = parser.parse_known_args(pn.state.session_args.get("args", []) or None)


def _client() -> jobobs.Client:
    return jobobs.connect(arguments.db)


client = pn.state.as_cached("jobobs-client", _client)
app(client).servable(title="jobobs")
