"""``jobobs.notebook()`` sends Panel's and HoloViews' JavaScript and CSS inline, so that a
notebook renders with no internet; and an inline dashboard stops refreshing when its
runtime or client closes, on ``stop()``, after a ``with`` block and when collected.

What a person sees in JupyterLab is in test_jupyterlab.py."""

import asyncio
import gc
import importlib.util
import json
import logging
import re
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import bokeh
import nbformat
import panel as pn
import pytest
from nbclient import NotebookClient

import jobobs
from jobobs.dashboard import Dashboard
from jobobs.dashboard.notebook import on_thread_of

STOPPED = "jobobs dashboard: stopped: the runtime is closed"
# The lists of files an autoload script has the page fetch (BokehJS, Panel, Tabulator...)
FETCHED = re.compile(r"const (js_urls|css_urls|js_modules) = (\[.*?\]);", re.S)


@pytest.fixture
def client(rt):
    return jobobs.Client.embedded(rt)


def test_import_jobobs_loads_no_panel_until_notebook_is_asked_for():
    code = ("import json, sys, jobobs; before = 'panel' in sys.modules; "
            "prepare = jobobs.notebook; "
            "print(json.dumps([before, 'panel' in sys.modules, prepare.__name__]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert json.loads(done.stdout) == [False, True, "notebook"]
    assert "notebook" in jobobs.__all__


def test_notebook_makes_panel_inline_and_can_be_called_again():
    with pn.config.set():  # the test process's Panel configuration, as it was, afterwards
        pn.config.inline = False
        jobobs.notebook()
        assert pn.config.inline
        css, js = list(pn.config.css_files), dict(pn.config.js_files)
        jobobs.notebook()
        assert pn.config.inline and (pn.config.css_files, pn.config.js_files) == (css, js)


def test_stylesheets_of_components_built_later_are_inline_too():
    from bokeh.document import Document
    from bokeh.models import ImportedStyleSheet, UIElement

    def linked(component):  # the stylesheets a component built in a document links to
        root = component.get_root(Document())
        return {str(sheet.url)[:30] for model in root.select({"type": UIElement})
                for sheet in model.stylesheets if isinstance(sheet, ImportedStyleSheet)}

    with pn.config.set():
        jobobs.notebook()
        jobobs.notebook()
        built = linked(pn.Column(pn.pane.Alert("paused", alert_type="success")))
        assert built and all(url.startswith("data:text/css;base64,") for url in built), built
        # a stylesheet on Panel's server path, as one built outside a cell's first output is
        from panel import reactive
        from panel.io.resources import CDN_DIST, LOCAL_DIST

        served = ImportedStyleSheet(url=f"{LOCAL_DIST}css/loading.css")
        reactive.patch_stylesheet(served, CDN_DIST)
        assert served.url.startswith("data:text/css;base64,"), served.url
        pn.config.inline = False  # Panel's own links again
        assert any(url.startswith("https://") for url in linked(pn.Column(pn.pane.Alert("x"))))


@pytest.mark.slow
def test_a_notebook_fetches_nothing_from_the_internet(tmp_path):
    """In a real kernel: every autoload script has the page fetch no file (BokehJS, Panel
    and Tabulator are in the output itself), through a second call, a later import of
    hvplot.pandas (which runs HoloViews' extension again) and a chart; and the SQL cell
    magic is there."""
    cells = ["import jobobs\n\njobobs.notebook()",
             "jobobs.notebook()\njobobs.notebook()",
             "import hvplot.pandas  # noqa: F401",
             "import pandas as pd\nimport panel as pn\n\n"
             "pn.Column(pd.DataFrame({'x': [1, 2, 3]}).hvplot.line(),"
             " pn.widgets.Tabulator(pd.DataFrame({'x': [1]})))",
             "print('jobobs_sql' in get_ipython().magics_manager.magics['cell'])"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [output for cell in notebook.cells for output in cell.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    scripts = [o.data["application/javascript"] for o in outputs
               if "application/javascript" in o.get("data", {})]
    fetched = [found for script in scripts for found in FETCHED.findall(script)]
    assert fetched and {listed for _, listed in fetched} == {"[]"}
    html = " ".join(o.data.get("text/html", "") for o in outputs if "data" in o)
    assert not re.search(r"""(src|href)=["']?https?:""", html)
    magic = importlib.util.find_spec("jobobs.access.sqlmagic") is not None
    assert notebook.cells[-1].outputs[0].text == f"{magic}\n"  # %%jobobs_sql, when it exists
    bokehjs = (Path(bokeh.__file__).parent / "server/static/js/bokeh.min.js").read_text()
    line = max(bokehjs.splitlines(), key=len)  # one of its lines, as Panel indents them
    assert line[len(line) // 2:][:300] in scripts[0]  # BokehJS itself, in the first cell


def test_a_dashboard_stops_when_its_runtime_closes_saying_so_once(rt, client, caplog):
    dashboard = Dashboard(client)
    dashboard.start()
    callback = dashboard.callback
    assert callback.running
    rt.close()
    with caplog.at_level(logging.WARNING, logger="jobobs.dashboard"):
        for _ in range(5):
            dashboard.refresh()
    assert [r.getMessage() for r in caplog.records] == [STOPPED]
    assert not callback.running and dashboard.callback is None
    assert dashboard.ended == "the runtime is closed"
    assert dashboard.error.visible and "the runtime is closed" in dashboard.error.object
    dashboard.start()  # a closed runtime does not open again
    assert dashboard.callback is None


async def until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_the_ticking_refresh_stops_itself_when_the_runtime_closes(rt, client, caplog):
    """On an event loop, as in a notebook's kernel: the callback really runs, then ends."""
    async def watch():
        dashboard = Dashboard(client, period=200)
        dashboard.start()
        callback = dashboard.callback
        await until(lambda: callback.counter >= 2)  # it ticks
        rt.close()
        await until(lambda: dashboard.ended is not None)
        return dashboard, callback

    with caplog.at_level(logging.WARNING, logger="jobobs.dashboard"):
        dashboard, callback = asyncio.run(watch())
    assert not callback.running and dashboard.callback is None
    assert [r.getMessage() for r in caplog.records] == [STOPPED]


def test_a_dashboard_stops_when_its_client_closes(client, caplog):
    dashboard = Dashboard(client)
    dashboard.start()
    callback = dashboard.callback
    client.close()
    assert client.closed
    with caplog.at_level(logging.WARNING, logger="jobobs.dashboard"):
        for _ in range(3):
            dashboard.refresh()
    assert [r.getMessage() for r in caplog.records] == [
        "jobobs dashboard: stopped: the client is closed"]
    assert not callback.running and dashboard.ended == "the client is closed"


def test_stop_and_start_again(client):
    dashboard = Dashboard(client)
    dashboard.start()
    first = dashboard.callback
    dashboard.stop()
    dashboard.stop()
    assert not first.running and dashboard.callback is None and dashboard.ended is None
    dashboard.start()
    assert dashboard.callback.running and dashboard.callback is not first
    dashboard.stop()


def test_a_with_block_refreshes_and_stops_at_its_end(client):
    with Dashboard(client) as dashboard:
        callback = dashboard.callback
        assert callback.running
    assert not callback.running and dashboard.callback is None


def test_a_dashboard_nobody_holds_is_collected_and_stops(client):
    dashboard = Dashboard(client)
    dashboard.start()
    callback = dashboard.callback
    collected = weakref.ref(dashboard)
    del dashboard
    gc.collect()
    assert collected() is None
    assert not callback.running


class Shown:
    """What Panel's handler of a page's message reaches: the output's console."""

    def __init__(self):
        self.errors = []

    def _on_error(self, ref, error):
        self.errors.append((ref, str(error)))


def test_a_page_message_from_another_thread_is_handled_on_the_cells_thread():
    """JupyterLab's comm messages can arrive on a subshell's thread: each is handed, in
    order, to the thread of the cells and of the dashboard's refresh."""
    handled = []

    def handle(shown, ref, manager, msg):
        handled.append((msg, threading.get_ident()))
        if msg == "fail":
            raise ValueError("a callback failed")

    async def kernel():
        cells = threading.get_ident()
        shown = Shown()
        on_msg = on_thread_of(asyncio.get_running_loop(), handle)
        on_msg(shown, "ref", None, "here")  # on the cells' thread: at once
        assert handled == [("here", cells)]
        subshell = threading.Thread(
            target=lambda: [on_msg(shown, "ref", None, m) for m in range(5)])
        subshell.start()
        subshell.join()
        assert len(handled) == 1  # handed over, not run on the subshell's thread
        await asyncio.to_thread(on_msg, shown, "ref", None, "fail")
        while len(handled) < 7:
            await asyncio.sleep(0.01)
        assert handled[1:] == [(m, cells) for m in [*range(5), "fail"]]
        assert shown.errors == [("ref", "a callback failed")]

    asyncio.run(asyncio.wait_for(kernel(), timeout=60))


def test_notebook_hands_panels_page_messages_to_the_cells_thread():
    from panel.viewable import MimeRenderMixin

    async def cell():
        jobobs.notebook()
        jobobs.notebook()  # once is enough
        return MimeRenderMixin._on_msg

    original = MimeRenderMixin._on_msg
    with pn.config.set():  # the test process's Panel configuration, as it was, afterwards
        try:
            jobobs.notebook()  # outside a running kernel: Panel's handler as it is
            assert MimeRenderMixin._on_msg is original
            wrapped = asyncio.run(cell())
            assert wrapped is not original and wrapped.on_one_thread
        finally:
            MimeRenderMixin._on_msg = original
