"""The layering contract (docs/architecture.md): each package imports only the layers below
it, imports inside functions included; no import cycle; no module uses another's private
names; the model uses the standard library only."""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "jobobs"
BELOW_ACCESS = {"model", "db", "execution", "kinds"}
# what each part of the package may import (besides itself)
MAY_IMPORT: dict[str, set[str]] = {
    "model": set(),
    "db": {"model"},
    "execution": {"model", "db"},
    "dask": {"model", "db", "execution"},
    "kinds": {"model", "db", "execution"},
    "access": BELOW_ACCESS,
    "testing": {"model", "db", "execution"},
    "dashboard": BELOW_ACCESS | {"access"},
    "demodata": {"model", "db"},
    "demo": BELOW_ACCESS | {"demodata"},
    "server": BELOW_ACCESS | {"access", "dashboard"},
    "cli": BELOW_ACCESS | {"access", "dask", "server", "demo", "dashboard"},
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = modules()


def part(module: str) -> str | None:
    """The layer a module of the package belongs to (None for the package's root)."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else None


def type_checking(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, (ast.Name, ast.Attribute))
            and "TYPE_CHECKING" in ast.unparse(node.test))


def imports(module: str, *, typing: bool = True) -> set[str]:
    """The package's modules ``module`` imports anywhere in its code (in functions too;
    under ``if TYPE_CHECKING:`` only with ``typing``)."""
    tree = ast.parse(MODULES[module].read_text())
    skipped = set() if typing else {id(n) for top in ast.walk(tree) if type_checking(top)
                                    for n in ast.walk(top)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES
                     else node.module for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] == "jobobs"}
    return found - {module}


@pytest.mark.parametrize("module", [m for m in MODULES if part(m)], ids=str)
def test_each_module_imports_only_the_layers_below(module):
    layer = part(module)
    allowed = MAY_IMPORT[layer] | {layer}
    wrong = sorted(name for name in imports(module) if part(name) not in allowed)
    assert wrong == [], f"{module} ({layer}) may import only {sorted(allowed)}"


def test_there_is_no_import_cycle():
    graph = {m: {i for i in imports(m, typing=False) if i in MODULES} for m in MODULES}
    cycles = [sorted(c) for c in strongly_connected(graph) if len(c) > 1]
    assert cycles == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            found.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return found


NAMEDTUPLE_API = {"_fields", "_replace", "_asdict", "_make"}  # public, underscore or not


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in NAMEDTUPLE_API


# a class reaching into another class of its own module, by design
OWN_MODULES_PRIVATE = {
    "jobobs.db.ledger": {"_new", "_changed"},  # the ledger flushes its JobRows
    "jobobs.execution.context": {"_sink", "_warned"},  # a JobLog writes for its JobContext
    # Panel's handler of a notebook page's messages, handed to the cells' thread
    "jobobs.dashboard.notebook": {"_on_msg"},
}


@pytest.mark.parametrize("module", list(MODULES), ids=str)
def test_no_module_uses_another_objects_private_names(module):
    """Only ``self`` and ``cls`` reach private names (and the pairs above)."""
    tree = ast.parse(MODULES[module].read_text())
    allowed = OWN_MODULES_PRIVATE.get(module, set())
    reached = sorted(
        {f"{ast.unparse(node.value)}.{node.attr}" for node in ast.walk(tree)
         if isinstance(node, ast.Attribute) and private(node.attr)
         and ast.unparse(node.value) not in ("self", "cls") and node.attr not in allowed}
        | {f"{node.module}.{alias.name}" for node in ast.walk(tree)
           if isinstance(node, ast.ImportFrom) for alias in node.names
           if private(alias.name)})
    assert reached == []


@pytest.mark.parametrize("module", list(MODULES), ids=str)
def test_imports_are_absolute(module):
    tree = ast.parse(MODULES[module].read_text())
    assert [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level] == []


@pytest.mark.parametrize("module", [m for m in MODULES if part(m) == "model"], ids=str)
def test_the_model_uses_the_standard_library_only(module):
    outside = {name for name in imports_anything(module)
               if name.split(".")[0] not in sys.stdlib_module_names
               and name.split(".")[0] not in ("jobobs", "__future__")}
    assert outside == set()


def imports_anything(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    return {(n.module or "") if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in n.names}


def test_only_the_dask_package_imports_distributed():
    users = {m for m in MODULES if {"distributed", "dask"} & {
        name.split(".")[0] for name in imports_anything(m)}}
    assert users and all(part(m) == "dask" for m in users)


def test_the_runtime_loads_no_ui_cli_or_dask():
    import json
    import subprocess

    code = ("import sys, json, jobobs, jobobs.execution.runtime; "
            "print(json.dumps(sorted(m for m in sys.modules)))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                           text=True, check=True).stdout))
    forbidden = {"panel", "holoviews", "hvplot", "bokeh", "click", "rich", "distributed",
                 "jobobs.cli", "jobobs.dashboard", "jobobs.dask", "jobobs.server"}
    assert {m for m in loaded if m in forbidden or m.split(".")[0] in forbidden} == set()


def test_the_readmes_layout_names_every_module_and_only_those():
    readme = (PACKAGE.parent / "README.md").read_text()
    block = readme.split("## Layout\n", 1)[1].split("```", 2)[1]
    listed, folder = set(), ""
    for line in block.splitlines()[2:]:  # after the language line and "jobobs/"
        indent = len(line) - len(line.lstrip())
        name, _, described = line.strip().partition("  ")
        if name.endswith("/"):
            folder = name
            if ":" in described:  # a folder listed on one line: "the Panel app: app, ..."
                listed |= {f"{name}{m.strip()}.py" for m in described.split(":")[1].split(",")}
            continue
        listed |= {f"{folder if indent == 4 else ''}{n.strip()}" for n in name.split(",")}
    actual = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
              if p.name != "__init__.py" or p.parent == PACKAGE}
    assert listed == actual


def test_the_old_module_names_are_the_moved_modules_themselves():
    import importlib

    import jobobs

    for old, new in jobobs.MOVED.items():
        module = importlib.import_module(old)
        assert module is importlib.import_module(new)
        assert module.__spec__.name == new  # its own, as importlib.resources needs
    assert callable(jobobs.job)  # still the decorator


def test_old_names_resolve_in_a_fresh_process_and_the_kinds_take_submissions():
    import subprocess

    code = ("import importlib, importlib.resources\n"
            "old = importlib.import_module('jobobs.jobs.importing')\n"
            "from jobobs.kinds import importing\n"
            "from jobobs.model.definition import resolve\n"
            "assert old is importing\n"
            "assert resolve('jobobs.jobs.importing:import_job') is importing.import_job\n"
            "assert importlib.resources.files('jobobs.kinds').joinpath('importing.py').is_file()\n"
            "from jobobs.execution.submissions import kinds\n"
            "assert set(kinds()) == {'python', 'import', 'export'}, kinds()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
