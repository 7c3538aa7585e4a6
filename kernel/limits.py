"""Concurrency and rate limits of stages (SPEC §15).

A stage with ``limit=Limit(key, max_running=..., rate=Rate(...))`` has its
key resolved once, when its job is enqueued (:func:`resolve_limit`); the job
carries the key and the numbers, and each store's lease transaction leases
it only while the key has room: fewer than ``max_running`` of its jobs
``LEASED``, and fewer than ``rate.count`` leases of the key in the window
``(now - rate.per, now]``. A job held back stays ``QUEUED``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from attrs import frozen
from returns.result import Failure, Result, Success

from kernel.convert import structure, to_json
from kernel.errors import DefinitionError
from kernel.records import Job, Json
from kernel.status import JobStatus

LimitKey = str | Callable[[Any], str]
"""A limit's key: a constant, or a function of the stage's typed input."""

_MICROS = timedelta(microseconds=1)


def _positive_int(owner: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DefinitionError(f"{owner} must be an int >= 1, got {value!r}")


@frozen
class Rate:
    """At most ``count`` leases of a key per sliding ``per``.

    >>> Rate(500, per=timedelta(minutes=1)).per_us
    60000000
    >>> Rate(0, per=timedelta(seconds=1))
    Traceback (most recent call last):
    ...
    kernel.errors.DefinitionError: Rate.count must be an int >= 1, got 0
    """

    count: int
    per: timedelta

    def __attrs_post_init__(self) -> None:
        _positive_int("Rate.count", self.count)
        if not isinstance(self.per, timedelta) or self.per <= timedelta(0):
            raise DefinitionError(f"Rate.per must be a positive timedelta, got {self.per!r}")
        if self.per % _MICROS:
            raise DefinitionError(f"Rate.per must be whole microseconds, got {self.per!r}")

    @property
    def per_us(self) -> int:
        """``per`` in microseconds, as stores keep it."""
        return self.per // _MICROS


@frozen
class Limit:
    """How many jobs of a key may run at once, and how often they may start.

    ``key`` is a string, or a function of the stage's typed input returning
    one (``lambda inp: f"openai:{inp.customer}"``). Jobs of every stage with
    the same key share its count; each stage checks its own numbers.

    >>> Limit("openai", max_running=4).max_running
    4
    >>> Limit("openai", max_running=0)
    Traceback (most recent call last):
    ...
    kernel.errors.DefinitionError: Limit.max_running must be an int >= 1, got 0
    """

    key: LimitKey
    max_running: int | None = None
    rate: Rate | None = None

    def __attrs_post_init__(self) -> None:
        if not (isinstance(self.key, str) and self.key) and not callable(self.key):
            raise DefinitionError(
                f"Limit.key must be a non-empty str or a function of the input, got {self.key!r}"
            )
        if self.max_running is not None:
            _positive_int("Limit.max_running", self.max_running)
        if self.rate is not None and not isinstance(self.rate, Rate):
            raise DefinitionError(f"Limit.rate must be a Rate(...) or None, got {self.rate!r}")
        if self.max_running is None and self.rate is None:
            raise DefinitionError(
                f"Limit({self.key!r}) limits nothing: give max_running=, rate= or both"
            )


def check_limit(owner: str, limit: object) -> Limit | None:
    """``limit`` itself if it is ``None`` or a :class:`Limit`.

    >>> check_limit("stage 'x'", 3)
    Traceback (most recent call last):
    ...
    kernel.errors.DefinitionError: stage 'x': limit must be a Limit(...) or None, got 3
    """
    if limit is None or isinstance(limit, Limit):
        return limit
    raise DefinitionError(f"{owner}: limit must be a Limit(...) or None, got {limit!r}")


@frozen(kw_only=True)
class JobLimit:
    """A limit as a job carries it: the resolved key and the numbers."""

    limit_key: str
    limit_max_running: int | None
    limit_rate_count: int | None
    limit_rate_per_us: int | None


def resolve_limit(
    stage_id: str, limit: Limit, input_type: type[Any] | None, input_json: Json
) -> Result[JobLimit, str]:
    """The job fields of ``limit`` for a stage whose input is ``input_json``.

    A key function gets the typed input (``None`` for a stage without one). Its
    exception, or a result that is not a non-empty string, is the error: the
    stage then fails for good without running its code.
    """
    key: object = limit.key
    if callable(key):
        typed: Any = None
        if input_type is not None:
            match structure(to_json(input_json), input_type, "input"):
                case Failure(problems):
                    return Failure(
                        f"LIMIT_KEY_ERROR: stage {stage_id!r}: limit key: " + "; ".join(problems)
                    )
                case Success(value):
                    typed = value
        try:
            key = key(typed)
        except Exception as error:  # user code: any exception fails the stage
            return Failure(
                f"LIMIT_KEY_ERROR: stage {stage_id!r}: limit key function raised "
                f"{type(error).__name__}: {error}"
            )
    if not isinstance(key, str) or not key:
        return Failure(
            f"LIMIT_KEY_ERROR: stage {stage_id!r}: limit key function must return a "
            f"non-empty str, got {key!r}"
        )
    rate = limit.rate
    return Success(
        JobLimit(
            limit_key=key,
            limit_max_running=limit.max_running,
            limit_rate_count=rate.count if rate is not None else None,
            limit_rate_per_us=rate.per_us if rate is not None else None,
        )
    )


LIMIT_ERROR = "limit_error"
"""The job payload entry holding why its limit key could not be resolved."""


def check_max_running_runs(owner: str, value: object) -> int | None:
    """``value`` itself if it is ``None`` or an int >= 1.

    >>> check_max_running_runs("workflow 'w'", 0)
    Traceback (most recent call last):
    ...
    kernel.errors.DefinitionError: workflow 'w': max_running_runs must be an int >= 1 or None, got 0
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DefinitionError(
            f"{owner}: max_running_runs must be an int >= 1 or None, got {value!r}"
        )
    return value


def freed_by_time_at(job: Job, jobs: Iterable[Job], now: datetime) -> datetime | None:
    """When waiting alone lets a queued, held ``job`` lease: after the oldest lease of
    its key in the rate window (read off ``jobs``' lease times) leaves it, or at
    ``now + per`` at the latest. ``None`` if time does not free it: it has no rate,
    or its key already has ``max_running`` jobs LEASED (only their end frees it).

    Used by the testing kit's ``run_until_idle`` to jump a fake clock (SPEC §16.1).
    """
    key, per_us = job.limit_key, job.limit_rate_per_us
    if key is None or job.limit_rate_count is None or per_us is None:
        return None
    same = [other for other in jobs if other.limit_key == key]
    leased = sum(1 for other in same if other.status == JobStatus.LEASED)
    if job.limit_max_running is not None and leased >= job.limit_max_running:
        return None
    per = timedelta(microseconds=per_us)
    recent = [
        other.locked_at
        for other in same
        if other.locked_at is not None and now - per < other.locked_at <= now
    ]
    return min(recent) + per if recent else now + per
