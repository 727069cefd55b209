"""Jobs on a Dask cluster: the executor on the server (``executor``), the job's side on a
worker (``worker``), the worker plugin that holds the server's token (``credentials``). The
only package that imports ``distributed``; without it installed, importing this package
says what to install, and everything else in jobobs works.
"""

from jobobs.model.errors import JobobsError

try:
    import distributed  # noqa: F401 - checked here, used by the modules of the package
except ImportError:
    raise JobobsError("the Dask executor needs dask and distributed: "
                      "pip install 'jobobs[dask]'") from None
