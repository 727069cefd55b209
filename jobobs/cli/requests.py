"""Control requests: start, pause, resume, cancel."""

from __future__ import annotations

import json
import sys

import click
from rich.text import Text

from jobobs.cli.base import DB_OPTION, JSON_OPTION, cell, client, console, main


def _control(command: str):
    @DB_OPTION
    @click.argument("job_id", type=int)
    @click.option("--by", help="Who asks (default: your user name).")
    @JSON_OPTION
    def control(db, job_id, by, as_json):
        with client(db) as jobs:
            outcome = jobs.request(job_id, command, by=by)
            if not jobs.served and command in ("start", "resume"):  # it runs here: wait
                outcome = jobs.wait(job_id, progress=sys.stderr.isatty()).status.value
        if as_json:
            click.echo(json.dumps({"id": job_id, "command": command, "status": outcome}))
        else:
            console().print(Text(f"job {job_id}: ").append(cell("status", outcome)))

    control.__doc__ = (f"Ask that a job {command}; print the status it went to. With no "
                       "server, a job started or resumed runs here.\n\n"
                       f"Example: jobobs {command} 42")
    return control


for _command in ("start", "pause", "resume", "cancel"):
    main.command(_command)(_control(_command))
