"""Schedules (SPEC §14, §16.1): when a schedule fires, as pure functions of values.

A :class:`Schedule` fires either on a five-field cron expression, read in its
time zone, or every fixed interval. Cron expressions are parsed and evaluated
by `cronsim <https://pypi.org/project/cronsim/>`_, which follows Debian's
cron through daylight-saving changes: a time that a spring-forward skips
fires at the first minute after the gap (``30 2 * * *`` fires at 03:00 on
that day), and a daily time that a fall-back repeats fires once, at its first
occurrence; an hourly expression fires in both repeated hours.

Nothing here looks up a time zone: callers pass the ``tzinfo`` (the kernel
takes no file or clock reads), and every time in and out is an aware UTC
datetime.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal, get_args

from attrs import field, frozen
from cronsim import CronSim, CronSimError

from kernel.records import Json

Overlap = Literal["skip", "allow"]
"""``skip``: no new run while the schedule's previous run is not terminal."""

Catchup = Literal["latest", "all", "none"]
"""What a tick does with fire times missed while no host ticked (SPEC §14)."""

NONE_GRACE = timedelta(seconds=60)
"""With ``catchup="none"``, a due fire time still fires if it is at most this old."""

MAX_CRON_STEPS = 10_000
"""The most cron matches looked at for one answer (a year of hourly fires)."""


@frozen
class Schedule:
    """A workflow started on a clock: ``cron`` (five fields) or ``every``, not both.

    >>> Schedule("nightly", "report", cron="0 3 * * *", timezone="Europe/Riga").overlap
    'skip'
    """

    id: str
    workflow_id: str
    cron: str | None = field(default=None, kw_only=True)
    every: timedelta | None = field(default=None, kw_only=True)
    input: Json = field(default=None, kw_only=True)
    config: dict[str, dict[str, Json]] | None = field(default=None, kw_only=True)
    timezone: str = field(default="UTC", kw_only=True)
    overlap: Overlap = field(default="skip", kw_only=True)
    catchup: Catchup = field(default="latest", kw_only=True)
    enabled: bool = field(default=True, kw_only=True)


@frozen(kw_only=True)
class ScheduleRecord:
    """A stored schedule: the :class:`Schedule` fields plus where it stands
    (``get_schedules()``, SPEC §16.1).

    ``next_fire_at`` is ``None`` while the schedule is paused.
    """

    id: str
    workflow_id: str
    cron: str | None = None
    every: timedelta | None = None
    input: Json = None
    config: dict[str, dict[str, Json]] | None = None
    timezone: str = "UTC"
    overlap: Overlap = "skip"
    catchup: Catchup = "latest"
    enabled: bool = True
    next_fire_at: datetime | None = None
    last_fire_at: datetime | None = None
    last_run_id: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 1

    @property
    def schedule(self) -> Schedule:
        """The schedule as its owner declared it."""
        return Schedule(
            self.id,
            self.workflow_id,
            cron=self.cron,
            every=self.every,
            input=self.input,
            config=self.config,
            timezone=self.timezone,
            overlap=self.overlap,
            catchup=self.catchup,
            enabled=self.enabled,
        )


def schedule_problems(schedule: Schedule, zone_of: Callable[[str], tzinfo | None]) -> list[str]:
    """What is wrong with ``schedule``, each problem naming its field; empty if nothing.

    ``zone_of`` resolves a time-zone name (``None`` for an unknown one).

    >>> schedule_problems(Schedule("s", "w", cron="* * * * * *"), lambda name: UTC)
    ["cron: expected five fields (minute hour day month weekday), got 6 in '* * * * * *'"]
    >>> schedule_problems(Schedule("s", "w"), lambda name: UTC)
    ['cron/every: give exactly one of cron and every, got neither']
    """
    problems: list[str] = []
    for name in ("id", "workflow_id"):
        value: Any = getattr(schedule, name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name}: expected a non-empty string, got {value!r}")
    cron, every = schedule.cron, schedule.every
    if (cron is None) == (every is None):
        got = "both" if cron is not None else "neither"
        problems.append(f"cron/every: give exactly one of cron and every, got {got}")
    if cron is not None:
        problems += _cron_problems(cron)
    if every is not None and (not isinstance(every, timedelta) or every <= timedelta(0)):
        problems.append(f"every: expected a positive timedelta, got {every!r}")
    if not isinstance(schedule.timezone, str) or zone_of(schedule.timezone) is None:
        problems.append(f"timezone: unknown time zone {schedule.timezone!r}")
    for name, allowed in (("overlap", Overlap), ("catchup", Catchup)):
        value = getattr(schedule, name)
        if value not in get_args(allowed):
            choices = ", ".join(repr(choice) for choice in get_args(allowed))
            problems.append(f"{name}: expected one of {choices}, got {value!r}")
    if not isinstance(schedule.enabled, bool):
        problems.append(f"enabled: expected a bool, got {schedule.enabled!r}")
    return problems


def _cron_problems(cron: object) -> list[str]:
    if not isinstance(cron, str):
        return [f"cron: expected a string, got {cron!r}"]
    fields = cron.split()
    if len(fields) != 5:
        return [
            "cron: expected five fields (minute hour day month weekday), "
            f"got {len(fields)} in {cron!r}"
        ]
    try:
        CronSim(cron, datetime(2000, 1, 1))
    except CronSimError as error:
        return [f"cron: {error} in {cron!r}"]
    return []


def next_fire(schedule: Schedule, zone: tzinfo, after: datetime) -> datetime:
    """The first fire time strictly after ``after``: ``after + every``, or the next
    cron match in ``zone``. ``every`` schedules count from ``after`` (the upsert or
    resume time); use :func:`due_fires` to step from one fire time to the next."""
    if schedule.every is not None:
        return after + schedule.every
    assert schedule.cron is not None
    it = CronSim(schedule.cron, after.astimezone(zone))
    for _ in range(MAX_CRON_STEPS):
        # Debian's rules may map a match inside a fall-back hour to the earlier
        # of the two instants; keep going until time moves forward.
        found = next(it).astimezone(UTC)
        if found > after:
            return found
    raise ValueError(f"cron {schedule.cron!r}: no fire time after {after.isoformat()}")


def _latest_cron_at_or_before(cron: str, zone: tzinfo, at: datetime) -> datetime | None:
    # Reverse iteration from one microsecond past ``at``'s second includes ``at``.
    start = at.replace(microsecond=0) + timedelta(microseconds=1)
    try:
        return next(CronSim(cron, start.astimezone(zone), reverse=True)).astimezone(UTC)
    except StopIteration:
        return None


@frozen
class DueFires:
    """What one tick does for one schedule: the fire times to start runs for (oldest
    first) and the schedule's next fire time afterwards."""

    fire_times: tuple[datetime, ...]
    next_fire_at: datetime


def due_fires(
    schedule: Schedule, zone: tzinfo, next_fire_at: datetime, now: datetime, max_fires: int
) -> DueFires:
    """The fire times due at ``now`` (``next_fire_at`` ≤ fire time ≤ ``now``), after the
    schedule's catch-up policy, and where its next fire time moves.

    ``latest`` fires the latest due time once; ``all`` fires each due time, at
    most ``max_fires`` of them, leaving the rest due for the next tick;
    ``none`` fires the latest due time only if it is at most 60 s old.

    >>> every = Schedule("s", "w", every=timedelta(minutes=15), catchup="all")
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> due = due_fires(every, UTC, t0, t0 + timedelta(minutes=40), max_fires=10)
    >>> [t.strftime("%H:%M") for t in due.fire_times], due.next_fire_at.strftime("%H:%M")
    (['00:00', '00:15', '00:30'], '00:45')
    """
    if next_fire_at > now:
        return DueFires((), next_fire_at)
    if schedule.catchup == "all":
        fires: list[datetime] = []
        at = next_fire_at
        while at <= now and len(fires) < max_fires:
            fires.append(at)
            at = next_fire(schedule, zone, at)
        return DueFires(tuple(fires), at)
    latest = _latest_due(schedule, zone, next_fire_at, now)
    following = next_fire(schedule, zone, latest)
    if schedule.catchup == "none" and now - latest > NONE_GRACE:
        return DueFires((), following)
    return DueFires((latest,), following)


def _latest_due(schedule: Schedule, zone: tzinfo, first: datetime, now: datetime) -> datetime:
    """The last fire time in ``[first, now]``; ``first`` is one."""
    if schedule.every is not None:
        steps = (now - first) // schedule.every
        return first + steps * schedule.every
    assert schedule.cron is not None
    latest = _latest_cron_at_or_before(schedule.cron, zone, now)
    return latest if latest is not None and latest >= first else first


__all__ = [
    "NONE_GRACE",
    "Catchup",
    "DueFires",
    "Overlap",
    "Schedule",
    "ScheduleRecord",
    "due_fires",
    "next_fire",
    "schedule_problems",
]
