"""Alerts: list what the server's alert rules opened (alerts), and acknowledge them
(alerts ack)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
import pandas as pd

from jobobs.cli.base import DB_OPTION, JSON_OPTION, client, main, show
from jobobs.model.errors import JobobsError

HEADERS = {"opened_at": "opened", "about": "job"}
SPARE = ("kind", "rule", "acknowledged")  # left out first in a narrow terminal


@main.group(invoke_without_command=True)
@DB_OPTION
@click.option("--open", "open_only", is_flag=True, help="Only alerts not resolved yet.")
@click.option("--job", "job_id", type=int, metavar="ID", help="Only this job's alerts.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1),
              help="At most this many alerts.")
@JSON_OPTION
@click.pass_context
def alerts(ctx, db, open_only, job_id, limit, as_json):
    """List the alerts the server's rules opened, newest first: a failed, slow or stalled
    job, a schedule's late or missed run. An alert stays open until its condition ends;
    acknowledging it (jobobs alerts ack ID...) says someone has seen it.

    Example: jobobs alerts --open        jobobs alerts ack 3
    """
    if ctx.invoked_subcommand is not None:
        return
    with client(db) as jobs:
        frame = jobs.alerts(open_only=open_only, job_id=job_id, limit=limit)
    rows = [{key: _value(value) for key, value in row.items()}
            for row in frame.to_dict(orient="records")]
    if as_json:
        click.echo(json.dumps([{key: _json(value) for key, value in row.items()}
                               for row in rows]))
    elif not rows:
        click.echo("no open alerts" if open_only else "no alerts")
    else:
        show(pd.DataFrame([_line(row) for row in rows]), False, HEADERS, SPARE)


@alerts.command("ack", short_help="Acknowledge alerts: someone has seen them.")
@DB_OPTION
@click.argument("alert_ids", metavar="ID...", nargs=-1, required=True, type=int)
@click.option("--by", help="Who acknowledges (default: your user name).")
@click.pass_context
def ack(ctx, db, alert_ids, by):
    """Acknowledge alerts: someone has seen them (each stays open until its condition
    ends). An alert acknowledged before keeps who did it first. Through a server, its
    runtime records it.

    Example: jobobs alerts ack 3 4
    """
    failed = []
    with client(db or ctx.parent.params.get("db")) as jobs:
        for alert_id in alert_ids:
            try:
                outcome = jobs.ack(alert_id, by=by)
            except JobobsError as error:
                if str(error) not in failed:  # a refusal of them all is said once
                    failed.append(str(error))
                    click.echo(f"Error: {error}", err=True)
                continue
            click.echo(f"alert {alert_id} acknowledged" if outcome == "acknowledged"
                       else outcome)
    if failed:
        ctx.exit(1)


def _value(value: Any) -> Any:
    """A cell as Python: None for DuckDB's NULL (NaN, NaT, <NA>), ints as ints."""
    if value is None or (not isinstance(value, str | bytes) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    return value


def _json(value: Any) -> Any:
    """Stored times are naive UTC: ISO 8601 with the Z that says so."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds") + "Z"
    return value


def _line(row: dict[str, Any]) -> dict[str, Any]:
    """An alert as the table's cells: what it is about, whether it is still open, its
    summary on one line."""
    if row["job_id"] is not None:
        about = f"{row['job_id']} {row['job_name'] or ''}".strip()
    elif row["schedule"] is not None:
        about = f"schedule {row['schedule']}"
    else:
        about = ""
    return {
        "id": row["id"], "opened_at": row["opened_at"], "rule": row["rule"],
        "kind": row["kind"], "about": about, "status": row["status"],
        "state": "open" if row["resolved_at"] is None else "resolved",
        "acknowledged": row["acknowledged_by"],
        "summary": " ".join(str(row["summary"] or "").split()),
    }
