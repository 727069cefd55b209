"""The served dashboard (Panel): ``Dashboard(client)`` for a notebook or a session,
``app(client)`` for a served page that refreshes itself."""

from jobobs.dashboard.app import Dashboard, app

__all__ = ["Dashboard", "app"]
