"""The served dashboard (Panel): built by ``app(client)`` for each browser session."""

from jobobs.dashboard.app import app

__all__ = ["app"]
