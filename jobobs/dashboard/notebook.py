"""A notebook made ready for jobobs in one call: ``jobobs.notebook()``.

The dashboard and the charts draw in the browser with BokehJS, Panel's JavaScript and their
stylesheets. Left to their defaults, Panel and HoloViews have the page fetch those from
public CDNs, so on a machine without internet access (CI, many company networks) the inline
dashboard and every chart stay blank. Here they go inline, in the cell's output: the
notebook renders with no network at all.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
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
    inline_later_stylesheets()
    comms_on_the_kernels_thread()
    shell = ipython()
    if shell is not None and importlib.util.find_spec(SQL_MAGIC) is not None:
        from jobobs.access import sqlmagic

        sqlmagic.register(shell)


def inline_later_stylesheets() -> None:
    """Have Panel send its own stylesheets inline whenever it builds a component, not only
    in a cell's first output.

    With ``inline=True`` Panel inlines the stylesheets of what a cell first shows, but a
    component built later (the job detail, a message, a HoloViews chart's wrappers) still
    links them to its CDN (upstream: holoviz/panel#8707): offline, those styles are missing.
    Panel gives every stylesheet it builds to ``patch_stylesheet``; this wraps it so that a
    link to a file Panel ships becomes that file as a ``data:`` URL, which any notebook
    front end reads with no network. Harmless once inline is turned off (Panel's own
    behaviour), when called again, or where a later Panel has no such hook."""
    from panel import reactive
    from panel.io import resources

    patch = getattr(reactive, "patch_stylesheet", None)
    if patch is None or getattr(patch, "inlines", False):
        return

    def patch_inline(stylesheet: Any, dist_url: str) -> None:
        try:
            url = str(stylesheet.url)
        except Exception:  # an unset url: Panel's own patch knows what to do
            url = ""
        if pn.config.inline and dist_url == resources.CDN_DIST:
            # on the CDN, or Panel's server path (which its patch would turn into the CDN's)
            for prefix in (resources.CDN_DIST, resources.LOCAL_DIST):
                if url.lstrip("./").startswith(prefix):
                    shipped = Path(resources.DIST_DIR,
                                   url.lstrip("./")[len(prefix):].split("?")[0])
                    if shipped.is_file():
                        stylesheet.url = as_data_url(shipped)
                        return
        patch(stylesheet, dist_url)

    patch_inline.inlines = True  # type: ignore[attr-defined]
    reactive.patch_stylesheet = patch_inline


def comms_on_the_kernels_thread() -> None:
    """Have Panel handle what the page sends (a button pressed, a row selected) on the
    thread that runs the notebook's cells and the dashboard's refresh, not on another.

    JupyterLab 4.6 sends each kind of comm message over a kernel subshell of its own where
    the kernel offers them (ipykernel 7), and the kernel handles a subshell's messages on
    a thread of its own. Panel's notebook documents are not made for two threads: while
    the page's message was applied on one, a refresh on the other had its changes to the
    page dropped now and then, and nothing sent them again (a Resume button stayed
    disabled for a paused job). Here a message that arrives on another thread is handed
    to the cells' thread and handled there, in order; on that thread it is handled at
    once, as before. Harmless outside a running kernel, or when called again."""
    from panel.viewable import MimeRenderMixin

    handle = MimeRenderMixin._on_msg
    if getattr(handle, "on_one_thread", False):
        return
    try:
        loop = asyncio.get_running_loop()  # the cells' loop, under a kernel
    except RuntimeError:
        return
    MimeRenderMixin._on_msg = on_thread_of(loop, handle)


def on_thread_of(loop: asyncio.AbstractEventLoop, handle: Callable[..., None]
                 ) -> Callable[..., None]:
    """Panel's handler of a page's message, run on ``loop``'s thread: at once there, else
    handed to it (in the order the messages came). An error goes to the output's console,
    as Panel does on its own."""
    thread = threading.get_ident()

    def on_msg(self: Any, ref: str, manager: Any, msg: Any) -> None:
        if threading.get_ident() == thread or loop.is_closed():
            handle(self, ref, manager, msg)
        else:
            loop.call_soon_threadsafe(handled, self, ref, manager, msg)

    def handled(self: Any, ref: str, manager: Any, msg: Any) -> None:
        # What a callback prints goes to the kernel's output as it is: capturing it would
        # swap sys.stdout, which the comm's own thread swaps too while it hands over.
        try:
            handle(self, ref, manager, msg)
        except Exception as error:  # Panel's console shows it with its traceback
            self._on_error(ref, error)

    on_msg.on_one_thread = True  # type: ignore[attr-defined]
    return on_msg


@functools.cache
def as_data_url(css: Path) -> str:
    """A stylesheet as a URL that holds it, read once."""
    return "data:text/css;base64," + base64.b64encode(css.read_bytes()).decode("ascii")


def ipython() -> Any:
    """The running IPython shell, or None outside one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()
