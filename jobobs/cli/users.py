"""The dashboard's users file: passwd."""

from __future__ import annotations

import sys

import click

from jobobs.access.users import ROLES, set_password
from jobobs.cli.base import main


@main.command()
@click.argument("user")
@click.option("--role", type=click.Choice(ROLES),
              help="operator (may act) or viewer (may look) [default: a new user is a "
              "viewer; an existing one keeps their role].")
@click.option("--users", "path", default="users.json", show_default=True,
              type=click.Path(dir_okay=False), help="The users file (written with mode 600).")
def passwd(user, role, path):
    """Set USER's dashboard password, and role, in the users file `jobobs serve --users`
    reads. Asks for the password twice; when standard input is not a terminal, reads it
    from its first line. The file keeps a salted scrypt hash, never the password.

    Example: jobobs passwd ann --role operator --users users.json
    """
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    entry = set_password(path, user, password, role)
    click.echo(f"{user} ({entry['role']}) may sign in; {path} is readable by you only")
