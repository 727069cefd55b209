"""Alert rules: what the server watches for, read from the file given to ``jobobs serve
--alerts FILE`` (TOML, or YAML when it ends in ``.yaml``/``.yml``)::

    notify = ["mailtos://ops:secret@mail.example.com"]  # every rule's, with --notify's

    [[rules]]
    name = "imports failed"
    when = "failed"                 # failed, shutdown, slow, rejects, stalled, late, missed
    jobs = ["import *"]             # job names (shell patterns); every job without it
    notify = ["slack://T1/B2/C3"]   # this rule's own targets, besides the ones above

    [[rules]]
    name = "slower than usual"
    when = "slow"
    times = 2                       # or after = "2h": longer than a fixed limit
    runs = 20

Each rule opens one alert per subject (a job's run, a schedule's tick) and resolves it when
its condition ends (``jobobs.access.alerting``). ``check`` says what is wrong with a rule
in one line; ``read`` reads a file and names the file and the rule in its errors.

Security: the file is read once, by the server, from the path its owner gives; its
targets are checked like ``--notify``'s (``notify.check_targets``); its patterns are
shell patterns (``fnmatch``), not regular expressions, so no pattern can take long.
"""

from __future__ import annotations

import fnmatch
import math
import os
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from jobobs.execution.scheduling import every_seconds
from jobobs.model.errors import JobobsError

KINDS = ("failed", "shutdown", "slow", "rejects", "stalled", "late", "missed")
SCHEDULE_KINDS = frozenset({"late", "missed"})
# the settings each kind takes, besides name, when, notify, resolved (and jobs and schedule)
SETTINGS: dict[str, frozenset[str]] = {
    "failed": frozenset(), "shutdown": frozenset(),
    "slow": frozenset({"after", "times", "runs"}),
    "rejects": frozenset({"count", "rate", "times", "runs", "min_rows"}),
    "stalled": frozenset({"after"}),
    "late": frozenset({"after"}), "missed": frozenset({"after"}),
}
COMMON = frozenset({"name", "when", "notify", "resolved", "schedule"})
TIMES, RUNS, MIN_ROWS = 2.0, 20, 100   # the defaults: twice the median of the last 20 runs
MOST_RULES = 1000
MOST_PATTERN = 200


@dataclass(frozen=True)
class Rule:
    """One rule; ``when`` says what it watches. ``jobs`` are shell patterns of job names,
    ``schedule`` one of schedule names (only the jobs of a matching schedule, or for
    ``late`` and ``missed`` the schedules watched). ``after`` is seconds (a fixed limit for
    ``slow``, the silence of ``stalled``, the deadline after a tick of ``late`` and
    ``missed``); ``times`` x the median of the ``runs`` last finished runs of the same
    name; ``count``, ``rate`` (of rows processed, once ``min_rows`` are) for ``rejects``.
    ``notify``: this rule's targets; ``resolved``: tell them when it ends too."""

    name: str
    when: str
    jobs: tuple[str, ...] = ("*",)
    schedule: str | None = None
    after: float | None = None
    times: float | None = None
    runs: int = RUNS
    count: int | None = None
    rate: float | None = None
    min_rows: int = MIN_ROWS
    notify: tuple[str, ...] = ()
    resolved: bool = True

    def watches(self, job_name: str | None, schedule: str | None) -> bool:
        """Whether a job of that name, made by that schedule (None: by hand), is in scope."""
        if self.schedule is not None and (
                schedule is None or not fnmatch.fnmatchcase(schedule, self.schedule)):
            return False
        if self.when in SCHEDULE_KINDS:
            return True
        return any(fnmatch.fnmatchcase(job_name or "", p) for p in self.jobs)

    def describe(self) -> str:
        """The rule in one line, as ``jobobs serve`` prints it."""
        scope = "" if self.jobs == ("*",) else f" of jobs {', '.join(self.jobs)}"
        if self.schedule is not None:
            scope += f" of schedule {self.schedule}"
        if self.when in SCHEDULE_KINDS:
            scope = f" of schedule {self.schedule or '*'}"
        limits = []
        if self.after is not None:
            limits.append(f"after {self.after:g} s")
        if self.times is not None:
            limits.append(f"{self.times:g} x the median of the last {self.runs} runs")
        if self.count is not None:
            limits.append(f"{self.count} rejects")
        if self.rate is not None:
            limits.append(f"{self.rate:.1%} of rows rejected")
        said = f" ({', '.join(limits)})" if limits else ""
        return f"{self.name}: {self.when}{scope}{said}"


DEFAULT_RULES = (
    Rule(name="failed", when="failed"),
    Rule(name="shut down", when="shutdown"),
    Rule(name="slower than usual", when="slow", times=TIMES, runs=RUNS),
)


def _text(value: Any, what: str, most: int = MOST_PATTERN) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > most:
        raise JobobsError(f"{what} is a text of 1 to {most} characters, not {value!r}")
    return value.strip()


def _texts(value: Any, what: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise JobobsError(f"{what} is a text or a list of texts, not {value!r}")
    return tuple(_text(v, what, most=2000) for v in values)


def _number(value: Any, what: str, *, least: float, most: float = math.inf,
            whole: bool = False) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not least <= value <= most
            or (whole and value != int(value))):
        kind = "a whole number" if whole else "a number"
        top = "" if most == math.inf else f" and at most {most:g}"
        raise JobobsError(f"{what} is {kind} of at least {least:g}{top}, not {value!r}")
    return int(value) if whole else float(value)


def check(given: dict[str, Any]) -> Rule:
    """A rule from its fields (a table of the file); JobobsError says what is wrong."""
    if not isinstance(given, dict):
        raise JobobsError(f"a rule is a table of settings, not {given!r}")
    name = _text(given.get("name"), "its name")
    when = given.get("when")
    if when not in KINDS:
        raise JobobsError(f"'when' is one of {', '.join(KINDS)}, not {when!r}")
    allowed = COMMON | SETTINGS[when] | (set() if when in SCHEDULE_KINDS else {"jobs"})
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise JobobsError(f"a {when!r} rule takes {', '.join(sorted(allowed))}; not "
                          f"{', '.join(unknown)}")
    fields: dict[str, Any] = {"name": name, "when": when}
    if "jobs" in given:
        fields["jobs"] = _texts(given["jobs"], "'jobs'")
    if "schedule" in given:
        fields["schedule"] = _text(given["schedule"], "'schedule'")
    if "notify" in given:
        fields["notify"] = _texts(given["notify"], "'notify'")
    if "resolved" in given:
        if not isinstance(given["resolved"], bool):
            raise JobobsError(f"'resolved' is true or false, not {given['resolved']!r}")
        fields["resolved"] = given["resolved"]
    if "after" in given:
        try:
            fields["after"] = every_seconds(given["after"])
        except JobobsError as error:
            raise JobobsError(f"'after': {error}") from None
    if "times" in given:
        fields["times"] = _number(given["times"], "'times'", least=1.0, most=1e6)
    if "runs" in given:
        fields["runs"] = _number(given["runs"], "'runs'", least=1, most=1000, whole=True)
    if "count" in given:
        fields["count"] = _number(given["count"], "'count'", least=1, most=1e15, whole=True)
    if "rate" in given:
        fields["rate"] = _number(given["rate"], "'rate'", least=0, most=1)
        if fields["rate"] <= 0:
            raise JobobsError("'rate' is a share of the rows above 0 and at most 1 (0.05 "
                              "for 5 %)")
    if "min_rows" in given:
        fields["min_rows"] = _number(given["min_rows"], "'min_rows'", least=1, most=1e15,
                                     whole=True)
    if when == "slow":
        if "after" in fields and "times" in fields:
            raise JobobsError("a 'slow' rule takes 'after' (a fixed limit) or 'times' (x "
                              "the usual), not both")
        if "after" not in fields:
            fields.setdefault("times", TIMES)
        elif "runs" in fields:
            raise JobobsError("'runs' goes with 'times', not with 'after'")
    if when == "rejects" and not {"count", "rate", "times"} & set(fields):
        raise JobobsError("a 'rejects' rule needs 'count', 'rate' or 'times'")
    if when in ("stalled", "late", "missed") and "after" not in fields:
        raise JobobsError(f"a {when!r} rule needs 'after' (such as \"10m\")")
    return Rule(**fields)


def rules(given: Any, targets: Sequence[str] = ()) -> list[Rule]:
    """The rules of a file's content: ``{"rules": [...], "notify": [...]}``; the file's
    ``notify`` and ``targets`` are added to each rule's own."""
    if not isinstance(given, dict):
        raise JobobsError("the file holds 'rules' (a list of tables) and, if you like, "
                          "'notify'")
    unknown = sorted(set(given) - {"rules", "notify"})
    if unknown:
        raise JobobsError(f"the file holds 'rules' and 'notify', not {', '.join(unknown)}")
    shared = [*_texts(given["notify"], "'notify'"), *targets] if "notify" in given else [
        *targets]
    listed = given.get("rules")
    if not isinstance(listed, list) or not listed:
        raise JobobsError("the file has no rules: give at least one [[rules]] table")
    if len(listed) > MOST_RULES:
        raise JobobsError(f"the file has {len(listed)} rules; at most {MOST_RULES}")
    found: list[Rule] = []
    for number, fields in enumerate(listed, 1):
        label = (f"rule {number}" + (f" ({fields['name']!r})" if isinstance(fields, dict)
                                     and isinstance(fields.get("name"), str) else ""))
        try:
            rule = check(fields)
        except JobobsError as error:
            raise JobobsError(f"{label}: {error}") from None
        if any(r.name == rule.name for r in found):
            raise JobobsError(f"{label}: another rule has that name")
        found.append(with_targets(rule, shared))
    return found


def with_targets(rule: Rule, targets: Iterable[str]) -> Rule:
    """The rule with ``targets`` after its own (each once)."""
    merged = tuple(dict.fromkeys([*rule.notify, *targets]))
    return replace(rule, notify=merged)


def read(path: str, targets: Sequence[str] = ()) -> list[Rule]:
    """The rules in the file at ``path`` (see the module's docstring); JobobsError names
    the file and what is wrong in it."""
    try:
        with open(path, "rb") as file:
            content = file.read(1_000_001)
    except OSError as error:
        raise JobobsError(f"cannot read the alert rules {path}: {error.strerror}") from None
    if len(content) > 1_000_000:
        raise JobobsError(f"{path}: an alert rules file is at most 1 MB")
    try:
        text = content.decode("utf-8")
        if os.path.splitext(path)[1].lower() in (".yaml", ".yml"):
            import yaml

            given = yaml.safe_load(text)
        else:
            given = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise JobobsError(f"{path}: not a TOML file: {error}") from None
    except Exception as error:  # yaml's errors, without importing them for everyone
        if type(error).__module__.startswith("yaml"):
            raise JobobsError(f"{path}: not a YAML file: "
                              f"{' '.join(str(error).split())}") from None
        raise
    try:
        return rules(given, targets)
    except JobobsError as error:
        raise JobobsError(f"{path}: {error}") from None
