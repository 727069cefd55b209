"""docs/sql.md: every example runs against the demo's database, and every column of every
table and view is documented."""

import re
from pathlib import Path

import duckdb
import pytest

DOC = (Path(__file__).parents[1] / "docs" / "sql.md").read_text()
EXAMPLES = re.findall(r"```sql\n(.*?)```", DOC, flags=re.DOTALL)
OBJECTS = ["jobs", "job_transitions", "journal", "rejects", "job_commands", "job_reports",
           "statuses",
           "export_watermarks", "export_watermark_rows", "export_files", "export_runs",
           "schema_version", "job_runs", "reject_breakdown",
           "error_breakdown"]


def test_there_are_at_least_ten_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("query", EXAMPLES, ids=[f"example{n}" for n in range(len(EXAMPLES))])
def test_each_example_runs(query, demo_db):
    with duckdb.connect(demo_db, read_only=True) as con:
        con.execute(query).fetchall()


def _section(name: str) -> str:
    match = re.search(rf"^### {name}\n(.*?)(?=^### |^## |\Z)", DOC,
                      flags=re.DOTALL | re.MULTILINE)
    assert match, f"docs/sql.md has no section for {name}"
    return match.group(1)


@pytest.mark.parametrize("name", OBJECTS)
def test_every_column_is_documented(name, demo_db):
    with duckdb.connect(demo_db, read_only=True) as con:
        columns = [row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()]
    documented = set()
    for cells in re.findall(r"^\| ([^|]+) \|", _section(name), flags=re.MULTILINE):
        documented |= {c.strip() for c in cells.split(",")}
    missing = [c for c in columns if c not in documented]
    assert not missing, f"{name}: {missing} undocumented"
