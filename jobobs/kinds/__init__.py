"""The job kinds jobobs ships: imports (with their rejects and replays) and exports (with
their watermarks)."""
