"""The ``jobobs`` command line. Each command parses its arguments, calls the client (the
server that owns the database, or the file itself) and prints the result; errors print
one line and exit 1."""

from jobobs.cli import (  # noqa: F401  (they add the commands)
    alerts,
    comparing,
    control,
    reading,
    schedules,
    submitting,
    users,
    watching,
    watermark,
)
from jobobs.cli.base import main

__all__ = ["main"]
