"""jobobs: observable, controllable import and export jobs, with their history in DuckDB."""

from jobobs.client import Client, connect
from jobobs.context import JobContext
from jobobs.errors import (
    IllegalRequest,
    IllegalTransition,
    JobDefinitionError,
    JobNotFound,
    JobobsError,
    RuntimeClosed,
    SchemaError,
    TooManyRejects,
)
from jobobs.handle import JobHandle, JobInfo
from jobobs.job import job
from jobobs.runtime import Runtime
from jobobs.states import LABELS, Status

__version__ = "0.1.0"
__all__ = [
    "LABELS",
    "Client",
    "IllegalRequest",
    "IllegalTransition",
    "JobContext",
    "JobDefinitionError",
    "JobHandle",
    "JobInfo",
    "JobNotFound",
    "JobobsError",
    "Runtime",
    "RuntimeClosed",
    "SchemaError",
    "Status",
    "TooManyRejects",
    "connect",
    "job",
]
