"""The watermarks of differential exports: watermark list, show and reset."""

from __future__ import annotations

import json

import click
import pandas as pd

from jobobs.cli.base import DB_OPTION, JSON_OPTION, client, main, records, show, show_fields


@main.group()
def watermark():
    """See and reset the watermarks of differential exports (export --watermark COL): the
    column, the last value exported, and the export and file that moved it.

    Example: jobobs watermark show orders-delta
    """


@watermark.command("list")
@DB_OPTION
@JSON_OPTION
def list_(db, as_json):
    """Every watermark.

    Example: jobobs watermark list --json
    """
    with client(db) as jobs:
        show(jobs.watermarks(), as_json)


@watermark.command("show")
@DB_OPTION
@click.argument("name")
@JSON_OPTION
def show_(db, name, as_json):
    """One watermark: its column, value, when it moved and the last file of NAME.

    Example: jobobs watermark show orders-delta --json
    """
    with client(db) as jobs:
        document = records(pd.DataFrame([jobs.watermark(name)]))[0]
    if as_json:
        click.echo(json.dumps(document))
        return
    show_fields([(None, list(document.items()))])


@watermark.command()
@DB_OPTION
@click.argument("name")
def reset(db, name):
    """Forget NAME's watermark: its next run exports every row (file numbers go on).
    Through a server this needs its token, not the analyst token; refused while an
    export of that name is queued or running.

    Example: jobobs watermark reset orders-delta
    """
    with client(db) as jobs:
        was = jobs.reset_watermark(name)
    click.echo(f"watermark {name} reset (it was {was['column']} = {was['value']}): "
               "the next run exports every row")
