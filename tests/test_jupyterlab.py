"""The three notebooks as an analyst opens them: a real JupyterLab server (127.0.0.1, a token,
no news feed or update check) and headless Chromium, on copies of the notebooks against a
database the demo built. Every request that would leave the machine is refused and recorded,
as on a network with no internet access, whether or not the test machine has one.

Each notebook is run from JupyterLab's Run menu and saved: the saved copy has every code cell
run and no error output, each chart has drawn in the page, and the inline dashboard of
live_monitoring shows the notebook's jobs with their status labels, pauses one when its
Pause button is pressed, and says it stopped refreshing once the last cell closes the runtime."""

import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect
from serving import JupyterLab

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
# A JupyterLab server, a kernel per notebook and the demo's jobs: more than the default.
pytestmark = pytest.mark.timeout(300)

# The test server's user settings: every cell rendered, not only those scrolled to, and no
# question about the news.
SETTINGS = {"@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
            "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                            "checkForUpdates": False}}
KERNEL_IDLE = "() => document.querySelector('#jp-main-statusbar')?.innerText.includes('| Idle')"
# Run: no cell waits or runs ([*]), and the first ``upto`` code cells (all by default) have
# run, or one shows a traceback (a failed cell stops the run).
RAN = """upto => {
  const notebook = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const prompts = [...notebook.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .map(prompt => prompt.textContent.trim());
  const failed = [...notebook.querySelectorAll('.jp-OutputArea-output')]
    .some(output => output.innerText.includes('Traceback (most recent call last)'));
  return !prompts.some(prompt => prompt.includes('*')) &&
    (failed || prompts.slice(0, upto ?? prompts.length).every(p => /^\\[\\d+\\]:$/.test(p)));
}"""
# The pixels of a cell's canvases that something was drawn on: neither transparent nor
# (near) white, the background of a Bokeh plot.
DRAWN = """canvases => Math.max(0, ...canvases.map(canvas => {
  const context = canvas.width && canvas.height && canvas.getContext('2d');
  if (!context) return 0;
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 0; i < data.length; i += 4)
    if (data[i + 3] && Math.min(data[i], data[i + 1], data[i + 2]) < 240) drawn++;
  return drawn;
}))"""


@pytest.fixture(scope="module")
def lab(demo_db, tmp_path_factory):
    """JupyterLab over copies of the notebooks, with a copy of the demo's database as
    ``JOBOBS_DB`` and a new file for live_monitoring's runtime."""
    folder = tmp_path_factory.mktemp("jupyterlab")
    (folder / "notebooks").mkdir()
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        (folder / "notebooks" / notebook.name).write_bytes(notebook.read_bytes())
    shutil.copyfile(demo_db, folder / "demo.duckdb")
    server = JupyterLab(folder / "notebooks", folder / "jupyter",
                        {"JOBOBS_DB": str(folder / "demo.duckdb"),
                         "JOBOBS_LIVE_DB": str(folder / "live.duckdb")},
                        settings=SETTINGS).wait_ready()
    yield server
    assert server.stop() == 0, server.output()


class Notebook:
    """One notebook open in JupyterLab, in a fresh browser context that refuses (and
    records) every request beyond the server."""

    def __init__(self, browser, lab: JupyterLab, name: str):
        self.lab, self.file = lab, f"{name}.ipynb"
        self.cells_in_file = nbformat.read(NOTEBOOKS / self.file, as_version=4).cells
        self.refused: list[str] = []
        self.context = browser.new_context(viewport={"width": 2000, "height": 1100})
        # matched in the browser: a Python predicate would hold every request until the
        # test next calls Playwright
        self.context.route(re.compile(f"^(?!{re.escape(lab.url)}/)"), self._refuse)
        self.page = self.context.new_page()
        self.page.goto(f"{lab.url}/lab/tree/{self.file}?reset&token={lab.token}")
        self.page.wait_for_function(KERNEL_IDLE, timeout=60_000)
        self.cells = self.page.locator(
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")

    def _refuse(self, route) -> None:
        self.refused.append(route.request.url)
        route.abort()

    def menu(self, title: str, item: str) -> None:
        self.page.get_by_role("menuitem", name=title, exact=True).click()
        self.page.locator(".lm-Menu-itemLabel").filter(
            has_text=re.compile(f"^{re.escape(item)}$")).click()

    def run(self, item: str = "Run All Cells", at: int | None = None) -> None:
        """Run cells from the Run menu (with cell ``at`` selected first) until they ran."""
        upto = None
        if at is not None:
            self.cells.nth(at).locator(".jp-InputPrompt").click()
            if item == "Run All Above Selected Cell":
                upto = sum(cell.cell_type == "code" for cell in self.cells_in_file[:at])
        self.menu("Run", item)
        self.page.wait_for_function(RAN, arg=upto, timeout=180_000, polling=200)

    def saved(self) -> dict:
        """Save from the File menu; the notebook as the server has it then."""
        self.menu("File", "Save Notebook")
        tab = self.page.locator(".jp-mod-current.lm-TabBar-tab", has_text=self.file)
        expect(tab).not_to_have_class(re.compile(r"\bjp-mod-dirty\b"), timeout=30_000)
        return self.lab.notebook(self.file)

    def cell_with(self, text: str) -> int:
        """The index of the first cell whose source has ``text``."""
        found = [index for index, cell in enumerate(self.cells_in_file) if text in cell.source]
        assert found, f"no cell of {self.file} has {text!r}"
        return found[0]

    def drawn(self, index: int) -> int:
        """How much the canvases of cell ``index`` have drawn."""
        return self.cells.nth(index).locator("canvas").evaluate_all(DRAWN)


@pytest.fixture
def open_notebook(browser, lab):
    opened = []

    def open_(name: str) -> Notebook:
        opened.append(Notebook(browser, lab, name))
        return opened[-1]

    yield open_
    for notebook in opened:
        notebook.context.close()
    lab.shut_down_kernels()


def problems(notebook: dict) -> list[str]:
    """The saved notebook's error outputs and code cells that did not run."""
    found = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        if cell["execution_count"] is None:
            found.append(f"cell {index} did not run")
        for output in cell["outputs"]:
            if output["output_type"] == "error":
                found.append(f"cell {index}: {output['ename']}: {output['evalue']}")
            elif "Traceback (most recent call last)" in output.get("text", ""):
                found.append(f"cell {index} printed a traceback: {output['text'][-300:]}")
    return found


def assert_charts_drew(notebook: Notebook, expected: int, timeout: float = 30.0) -> None:
    """The cells that plot (``.hvplot.``) have drawn more than a background."""
    blank = [index for index, cell in enumerate(notebook.cells_in_file)
             if ".hvplot." in cell.source]
    assert len(blank) == expected
    deadline = time.monotonic() + timeout
    while blank and time.monotonic() < deadline:
        blank = [index for index in blank if notebook.drawn(index) < 1000]
        time.sleep(0.1)
    assert not blank, (f"the charts of cells {blank} did not draw; requests refused: "
                       f"{sorted(set(notebook.refused))}")


def buttons_in_page(notebook: Notebook, label: str) -> list[list]:
    """The Bokeh models of the buttons with this label in the page's documents (document,
    model id, disabled): whether an update reached the page's models or only its views."""
    return notebook.page.evaluate("""(label) => (window.Bokeh?.documents ?? []).flatMap(
        (doc, i) => [...doc.all_models].filter((m) => m.label === label)
                                       .map((m) => [i, m.id, m.disabled]))""", label)


def assert_offline(notebook: Notebook) -> None:
    beyond = sorted(set(notebook.refused))
    assert not beyond, f"the page asked for files beyond the Jupyter server: {beyond}"


@pytest.mark.parametrize(("name", "charts"), [("job_history", 5), ("rejects", 1)])
def test_a_notebook_runs_and_its_charts_draw(open_notebook, name, charts):
    notebook = open_notebook(name)
    notebook.run("Run All Cells")
    assert not problems(notebook.saved())
    assert_charts_drew(notebook, charts)
    assert_offline(notebook)


def test_the_inline_dashboard_shows_the_jobs_and_pauses_one(open_notebook):
    notebook = open_notebook("live_monitoring")
    # The driver cell pauses, resumes and cancels the second job from the buttons' cell,
    # and the last one closes the runtime: the page presses first, the runtime open.
    driver = notebook.cell_with("wait_for(second.id")
    notebook.run("Run All Above Selected Cell", at=driver)
    dashboard = notebook.cells.nth(notebook.cell_with("Dashboard(client)"))
    for name, status in (("score-customers", "finished"), ("score-everyone", "running")):
        row = dashboard.locator(".tabulator-row", has_text=name)
        expect(row.locator(".jobobs-status"),
               f"the inline dashboard shows no {status} {name}; requests refused: "
               f"{sorted(set(notebook.refused))}").to_have_attribute("data-status", status,
                                                                     timeout=30_000)

    row = dashboard.locator(".tabulator-row", has_text="score-everyone")
    row.get_by_text("score-everyone").click()
    expect(dashboard.locator("h3", has_text="score-everyone")).to_be_visible(timeout=30_000)
    dashboard.get_by_role("button", name="Pause", exact=True).click()
    expect(row.locator(".jobobs-status")).to_have_attribute("data-status", "paused",
                                                            timeout=30_000)
    expect(dashboard.locator("h3 .jobobs-status")).to_have_attribute("data-status", "paused")
    # the request's note, built after the cell's first output, has its stylesheet offline
    note = dashboard.locator(".alert-success", has_text="pause")
    expect(note).to_be_visible()
    assert note.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    # Resumed from the page too, so that the driver cell finds the job running (it presses
    # the notebook's own buttons from code).
    resume = dashboard.get_by_role("button", name="Resume", exact=True)
    try:
        expect(resume).to_be_enabled(timeout=30_000)
    except AssertionError:
        raise AssertionError(f"Resume stays disabled for a paused job; the page's copies of "
                             f"the button: {buttons_in_page(notebook, 'Resume')}") from None
    resume.click()
    expect(row.locator(".jobobs-status")).to_have_attribute("data-status", "running",
                                                            timeout=30_000)

    notebook.run("Run Selected Cell and All Below", at=driver)
    saved = notebook.saved()
    assert not problems(saved)
    transitions = "".join(saved["cells"][driver]["outputs"][-1]["data"]["text/plain"])
    # paused twice: from the page, then by the driver cell
    assert len(re.findall(r"running\s+pausing", transitions)) == 2, transitions
    # the last cell closed the runtime: the dashboard says it stopped, once
    expect(dashboard.get_by_text("stopped refreshing")).to_be_visible(timeout=30_000)
    assert_offline(notebook)
