"""A notebook made ready for jobobs in one call: ``jobobs.notebook()``.

The dashboard and the charts draw in the browser with BokehJS, Panel's JavaScript and their
stylesheets. Left to their defaults, Panel and HoloViews have the page fetch those from
public CDNs, so on a machine without internet access (CI, many company networks) the inline
dashboard and every chart stay blank. Here they go inline, in the cell's output: the
notebook renders with no network at all.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import holoviews as hv
import panel as pn

# Panel's components that jobobs' views use beyond its own (the job list's table).
EXTENSIONS = ("tabulator",)
SQL_MAGIC = "jobobs.access.sqlmagic"


def notebook() -> None:
    """Load Panel (with Tabulator) and hvPlot's Bokeh backend, with their JavaScript and
    CSS sent inline, so that dashboards and charts render with no internet; add ``.hvplot``
    to DataFrames and, under IPython, the ``%%jobobs_sql`` cell magic.

    Call it first: an ``import hvplot.pandas`` earlier in the same cell has already had
    the page fetch BokehJS from a CDN. Calling it again, or importing ``hvplot.pandas``
    in a later cell, is harmless (and inline too)."""
    if "inline" in hv.extension.param:  # the notebook's extension, under IPython only
        # Its class's default, not one call's: hvPlot runs the extension each time a cell
        # imports ``hvplot.pandas``, and every one of those loads must be inline.
        hv.extension.inline = True
    # The import loads HoloViews' Bokeh backend (hvPlot runs the extension) and adds .hvplot
    import hvplot.pandas  # noqa: F401
    pn.extension(*EXTENSIONS, inline=True)  # HoloViews' load is there: only what it lacks
    shell = ipython()
    if shell is not None and importlib.util.find_spec(SQL_MAGIC) is not None:
        from jobobs.access import sqlmagic

        sqlmagic.register(shell)


def ipython() -> Any:
    """The running IPython shell, or None outside one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()
