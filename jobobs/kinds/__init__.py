"""The job kinds jobobs ships: imports (with their rejects and replays) and exports (with
their watermarks)."""

# Imported with the package: each registers how a runtime carries out its submissions.
from jobobs.kinds import exporting, importing

__all__ = ["exporting", "importing"]
