"""compare: two runs side by side, their differences marked."""

from __future__ import annotations

import json
import shutil
from typing import Any

import click

from jobobs.access.comparing import compare as comparison
from jobobs.access.comparing import shown
from jobobs.cli.base import DB_OPTION, JSON_OPTION, client, main
from jobobs.model import humane

DIFFERS = "≠"  # marks a differing row, colors or not
DIFFERING = "bold yellow"
GROUP_TITLES = {"job": "job", "spec": "spec", "counters": "counters",
                "durations": "durations", "times": "times (local)"}


def header(result: dict[str, Any]) -> str:
    """The first line: which two runs, and whether they are runs of one job."""
    (name_a, name_b), a, b = result["names"], result["a"], result["b"]
    if not result["same_name"]:
        return f"jobs {a} ({name_a}) and {b} ({name_b}) are runs of different jobs"
    return f"jobs {a} and {b}: two runs of {name_a}"


@main.command("compare")
@DB_OPTION
@click.argument("first", metavar="A", type=int)
@click.argument("second", metavar="B", type=int)
@JSON_OPTION
def compare_command(db, first, second, as_json):
    """Compare two runs side by side: spec, counters, durations, reject reasons, error,
    and where their journals first differ (message by message at the same line number).
    Differing rows are marked ≠.

    Example: jobobs compare 41 42
    """
    with client(db) as jobs:
        result = comparison(jobs.connection(), first, second)
    if as_json:
        click.echo(json.dumps(result))
        return
    from rich.console import Console

    console = Console(highlight=False, width=shutil.get_terminal_size((120, 24)).columns)
    for part in render(result):
        console.print(part)


def render(result: dict[str, Any]) -> list[Any]:
    """What ``compare`` prints, as rich renderables in order; what the runs hold is
    ``Text``, never read as rich markup."""
    from rich.table import Table
    from rich.text import Text

    a, b = f"#{result['a']}", f"#{result['b']}"
    parts: list[Any] = [Text(header(result), style="" if result["same_name"] else "bold red")]

    def table(*columns: str) -> Table:
        made = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        made.add_column("")
        for column in columns:
            made.add_column(column, overflow="fold")
        return made

    fields = table("", a, b)
    group = None
    for row in result["fields"]:
        if row["group"] != group:
            group = row["group"]
            fields.add_row("", Text(GROUP_TITLES[group], style="dim"), "", "")
        fields.add_row(DIFFERS if row["differs"] else "", Text(row["field"]),
                       Text(shown(row["field"], row["a"])), Text(shown(row["field"], row["b"])),
                       style=DIFFERING if row["differs"] else None)
    parts += [Text(), fields]

    parts += [Text(), Text("reject reasons", style="bold")]
    if result["rejects"]:
        reasons = table("reason", a, b)
        for row in result["rejects"]:
            reasons.add_row(DIFFERS if row["differs"] else "", Text(str(row["reason"])),
                            humane.count(row["a"]), humane.count(row["b"]),
                            style=DIFFERING if row["differs"] else None)
        parts.append(reasons)
    else:
        parts.append(Text("no rejects in either"))

    errors = result["errors"]
    parts += [Text(), Text("errors" + (f"  {DIFFERS}" if errors["differs"] else ""),
                       style="bold")]
    for side, label in (("a", a), ("b", b)):
        parts.append(Text(f"{label}: {errors[side] or '(none)'}",
                          style=DIFFERING if errors["differs"] else ""))

    journal = result["journal"]
    counts = (f"{a} has {humane.count(journal['lines_a'])} lines, "
              f"{b} {humane.count(journal['lines_b'])}")
    parts.append(Text())
    if journal["first"] is None:
        parts.append(Text(f"journals: the same ({counts})", style="bold"))
        return parts
    parts.append(Text(f"journals: first difference at line {journal['first']} ({counts})",
                      style="bold"))
    lines = table("line", a, b)
    for row in journal["rows"]:
        lines.add_row(DIFFERS if row["differs"] else "", str(row["seq"]),
                      Text("" if row["a"] is None else row["a"]),
                      Text("" if row["b"] is None else row["b"]),
                      style=DIFFERING if row["seq"] == journal["first"] else None)
    parts.append(lines)
    return parts
