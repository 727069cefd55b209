"""Retry policies: how many times a failed run is tried again, from its last checkpoint,
how long after, and for which failures.

A job (``Runtime.submit(..., retry=Retry(3))``, ``@job(retry=...)``, a spec's ``retry``)
or a schedule carries one. A run that fails with retries left is queued again and runs
``delay * backoff ** (n - 1)`` seconds later (at most ``longest``), resumed from its last
checkpoint as a Start after a pause is. A cancel is never retried; a run failed for too
many rejects only when ``on`` names ``TooManyRejects`` (or a base of it). Standard library
only.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Any

from jobobs.model.errors import JobobsError

NOT_BY_DEFAULT = "TooManyRejects"  # the same input fails the same way: asked for by name
MOST_RETRIES = 100
LONGEST = 86_400.0  # no retry waits more than a day


@dataclass(frozen=True)
class Retry:
    """Up to ``times`` retries, the first ``delay`` seconds after the failure, each next
    one ``backoff`` times longer (at most ``longest``). ``on``: the exception class names
    (or their bases', such as ``OSError``) a failure must have to be retried; None retries
    every failure except too many rejects."""

    times: int
    delay: float = 30.0
    backoff: float = 2.0
    on: tuple[str, ...] | None = None
    longest: float = 3600.0

    def __post_init__(self) -> None:
        if (isinstance(self.times, bool) or not isinstance(self.times, numbers.Integral)
                or not 0 <= self.times <= MOST_RETRIES):
            raise JobobsError(f"retries must be a whole number from 0 to {MOST_RETRIES}, "
                              f"not {self.times!r}")
        for what, value, least in (("retry delay", self.delay, 0.0),
                                   ("backoff", self.backoff, 1.0),
                                   ("longest retry delay", self.longest, 0.0)):
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not math.isfinite(value) or not least <= value <= LONGEST):
                raise JobobsError(f"the {what} must be a number of seconds from {least:g} "
                                  f"to {LONGEST:g}, not {value!r}")
        if self.on is not None:
            on = (self.on,) if isinstance(self.on, str) else tuple(self.on)
            if not on or not all(isinstance(n, str) and n.isidentifier() for n in on):
                raise JobobsError("retry on: exception class names, such as ConnectionError "
                                  "or TooManyRejects")
            object.__setattr__(self, "on", on)
        object.__setattr__(self, "times", int(self.times))

    def wait(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1 for the first), at most ``longest``."""
        wait = self.delay
        for _ in range(retry - 1):
            if wait >= self.longest:
                break
            wait *= self.backoff
        return min(wait, self.longest)

    def follows(self, retried: int | None, kinds: str | None) -> bool:
        """True if a run that failed with an exception of ``kinds`` is retried, after
        ``retried`` retries."""
        return (retried or 0) < self.times and self.wants(kinds)

    def wants(self, kinds: str | None) -> bool:
        """True if a failure whose exception has the classes ``kinds`` (space-separated,
        from ``Outcome.kinds``) is retried."""
        names = set((kinds or "").split())
        if self.on is None:
            return NOT_BY_DEFAULT not in names
        return bool(names & set(self.on))

    # -- as stored: the jobs' and schedules' ``retries`` and ``retry_policy`` columns -------

    def policy(self) -> str:
        """The rest of the policy as the JSON text stored beside ``retries``."""
        return json.dumps({"delay": self.delay, "backoff": self.backoff,
                           "on": None if self.on is None else list(self.on),
                           "longest": self.longest})

    def to_dict(self) -> dict[str, Any]:
        return {"times": self.times, **json.loads(self.policy())}

    @classmethod
    def stored(cls, times: int | None, policy: str | None) -> Retry | None:
        """The policy a row stores (None when it has no retries)."""
        if not times:
            return None
        return cls(times, **json.loads(policy or "{}"))

    @classmethod
    def given(cls, value: Retry | int | dict[str, Any] | None) -> Retry | None:
        """A policy as an API or a spec gives it: a Retry, a count, or a dict of Retry's
        fields (``times``, ``delay``, ``backoff``, ``on``, ``longest``)."""
        if value is None or isinstance(value, Retry):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"times", "delay", "backoff", "on", "longest"}
            if unknown or "times" not in value:
                raise JobobsError("a retry policy is {\"times\": N} with optional delay, "
                                  "backoff, on and longest" + (
                                      f" (not {', '.join(sorted(unknown))})" if unknown else ""))
            return cls(**value)
        return cls(value)  # a count: checked by __post_init__
