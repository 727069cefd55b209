"""The server's Quack token on Dask workers: given once to each worker as a worker plugin,
never in a task's arguments.

A task's arguments are kept by the scheduler and shown wherever tasks are (its dashboard,
``Client.processing``, cluster dumps), and a failed task's arguments are written in the
worker's log. The executor registers ``Credentials`` instead: the scheduler hands it to
every worker, present and to come, and the task names it (``access``) for ``token``.
Whoever controls the scheduler can run code on the workers anyway, so it is no weaker
there; it is gone from everywhere else, and from the workers when the server stops.

Imported by the Dask executor and, through the plugin, on workers: distributed is there.
"""

from __future__ import annotations

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from jobobs.db.quack import ServerUnavailable


class Credentials(WorkerPlugin):
    """The token of the jobobs server whose plugin is named ``name``."""

    def __init__(self, name: str, token: str):
        self.name, self.token = name, token

    def __repr__(self) -> str:  # never show the token
        return f"Credentials({self.name!r})"


def token(name: str) -> str:
    """On a Dask worker: the token the server registered as ``name``."""
    plugin = get_worker().plugins.get(name)
    if not isinstance(plugin, Credentials):
        raise ServerUnavailable(f"this Dask worker has no credentials {name!r} from the "
                                "jobobs server (it stopped, or the worker joined as it did)")
    return plugin.token
