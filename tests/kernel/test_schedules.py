"""When schedules fire (SPEC §14, §16.1): validation, catch-up policies, daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from kernel.schedules import Schedule, due_fires, next_fire, schedule_problems

NEW_YORK = ZoneInfo("America/New_York")
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def zone_of(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- validation ------------------------------------------------------------------


def test_a_valid_schedule_has_no_problems() -> None:
    nightly = Schedule("nightly", "report", cron="0 3 * * 1-5", timezone="Europe/Riga")
    assert schedule_problems(nightly, zone_of) == []
    assert schedule_problems(Schedule("poll", "sync", every=timedelta(minutes=15)), zone_of) == []


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        (Schedule("s", "w"), "cron/every: give exactly one of cron and every, got neither"),
        (
            Schedule("s", "w", cron="* * * * *", every=timedelta(seconds=1)),
            "cron/every: give exactly one of cron and every, got both",
        ),
        (
            Schedule("s", "w", cron="0 0 * * * *"),
            "cron: expected five fields (minute hour day month weekday), got 6 in '0 0 * * * *'",
        ),
        (Schedule("s", "w", cron="61 * * * *"), "cron: Bad minute in '61 * * * *'"),
        (Schedule("s", "w", cron="a b c d e"), "cron: Bad minute in 'a b c d e'"),
        (
            Schedule("s", "w", every=timedelta(0)),
            "every: expected a positive timedelta, got datetime.timedelta(0)",
        ),
        (
            Schedule("s", "w", every=timedelta(minutes=1), timezone="Mars/Olympus"),
            "timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            Schedule("s", "w", every=timedelta(minutes=1), overlap="queue"),  # type: ignore[arg-type]
            "overlap: expected one of 'skip', 'allow', got 'queue'",
        ),
        (
            Schedule("s", "w", every=timedelta(minutes=1), catchup="some"),  # type: ignore[arg-type]
            "catchup: expected one of 'latest', 'all', 'none', got 'some'",
        ),
        (Schedule("", "w", every=timedelta(minutes=1)), "id: expected a non-empty string, got ''"),
    ],
)
def test_a_bad_schedule_names_the_field_and_value(schedule: Schedule, problem: str) -> None:
    assert schedule_problems(schedule, zone_of) == [problem]


# -- the first fire time ---------------------------------------------------------


def test_every_fires_one_interval_after_the_upsert() -> None:
    schedule = Schedule("s", "w", every=timedelta(minutes=15))
    assert next_fire(schedule, UTC, T0) == T0 + timedelta(minutes=15)


def test_cron_fires_strictly_after_the_upsert_in_its_time_zone() -> None:
    schedule = Schedule("s", "w", cron="0 12 * * *", timezone="America/New_York")
    # 12:00 UTC is 07:00 in New York: noon there is 17:00 UTC the same day.
    assert next_fire(schedule, NEW_YORK, T0) == utc("2026-01-01T17:00:00+00:00")
    # A fire time equal to "after" is not after it.
    assert next_fire(schedule, NEW_YORK, utc("2026-01-01T17:00:00+00:00")) == utc(
        "2026-01-02T17:00:00+00:00"
    )


# -- catch-up --------------------------------------------------------------------

EVERY_15 = timedelta(minutes=15)


def test_nothing_is_due_before_the_next_fire_time() -> None:
    schedule = Schedule("s", "w", every=EVERY_15)
    due = due_fires(schedule, UTC, T0, T0 - timedelta(seconds=1), max_fires=10)
    assert due.fire_times == () and due.next_fire_at == T0


def test_a_fire_time_equal_to_now_is_due() -> None:
    schedule = Schedule("s", "w", every=EVERY_15)
    due = due_fires(schedule, UTC, T0, T0, max_fires=10)
    assert due.fire_times == (T0,) and due.next_fire_at == T0 + EVERY_15


def test_latest_fires_once_for_the_last_missed_time_and_keeps_the_phase() -> None:
    schedule = Schedule("s", "w", every=EVERY_15, catchup="latest")
    now = T0 + timedelta(hours=2, minutes=7)  # 9 fire times missed
    due = due_fires(schedule, UTC, T0, now, max_fires=100)
    assert due.fire_times == (T0 + timedelta(hours=2),)
    assert due.next_fire_at == T0 + timedelta(hours=2, minutes=15)


def test_all_fires_each_missed_time_oldest_first_up_to_max_fires() -> None:
    schedule = Schedule("s", "w", every=EVERY_15, catchup="all")
    now = T0 + timedelta(hours=2, minutes=7)
    first = due_fires(schedule, UTC, T0, now, max_fires=5)
    assert first.fire_times == tuple(T0 + k * EVERY_15 for k in range(5))
    # The rest stay due for the next tick.
    rest = due_fires(schedule, UTC, first.next_fire_at, now, max_fires=5)
    assert rest.fire_times == tuple(T0 + k * EVERY_15 for k in range(5, 9))
    assert rest.next_fire_at == T0 + 9 * EVERY_15


def test_none_fires_only_a_time_at_most_60_seconds_old() -> None:
    schedule = Schedule("s", "w", every=EVERY_15, catchup="none")
    fresh = due_fires(schedule, UTC, T0, T0 + timedelta(seconds=60), max_fires=10)
    assert fresh.fire_times == (T0,)
    stale = due_fires(schedule, UTC, T0, T0 + timedelta(minutes=20), max_fires=10)
    assert stale.fire_times == ()
    assert stale.next_fire_at == T0 + 2 * EVERY_15


def test_cron_latest_after_a_long_downtime_does_not_walk_every_missed_minute() -> None:
    schedule = Schedule("s", "w", cron="* * * * *", catchup="latest")
    now = T0 + timedelta(days=400, seconds=30)
    due = due_fires(schedule, UTC, T0 + timedelta(minutes=1), now, max_fires=100)
    assert due.fire_times == (T0 + timedelta(days=400),)
    assert due.next_fire_at == T0 + timedelta(days=400, minutes=1)


# -- daylight saving (America/New_York, 2026) -------------------------------------


def fires(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    times, at = [], start
    for _ in range(count):
        at = next_fire(schedule, NEW_YORK, at)
        times.append(at)
    return times


def test_spring_forward_a_skipped_time_fires_at_the_end_of_the_gap() -> None:
    # 8 March 2026: clocks go from 02:00 to 03:00; 02:30 does not exist that day.
    schedule = Schedule("s", "w", cron="30 2 * * *", timezone="America/New_York")
    got = fires(schedule, utc("2026-03-06T12:00:00-05:00"), 3)
    assert got == [
        utc("2026-03-07T02:30:00-05:00"),
        utc("2026-03-08T03:00:00-04:00"),
        utc("2026-03-09T02:30:00-04:00"),
    ]


def test_fall_back_a_repeated_daily_time_fires_once() -> None:
    # 1 November 2026: clocks go from 02:00 back to 01:00; 01:30 happens twice.
    schedule = Schedule("s", "w", cron="30 1 * * *", timezone="America/New_York")
    got = fires(schedule, utc("2026-10-31T12:00:00-04:00"), 2)
    assert got == [utc("2026-11-01T01:30:00-04:00"), utc("2026-11-02T01:30:00-05:00")]


def test_fall_back_an_hourly_schedule_fires_in_both_repeated_hours() -> None:
    schedule = Schedule("s", "w", cron="0 * * * *", timezone="America/New_York")
    got = fires(schedule, utc("2026-11-01T00:30:00-04:00"), 4)
    assert got == [
        utc("2026-11-01T01:00:00-04:00"),
        utc("2026-11-01T01:00:00-05:00"),
        utc("2026-11-01T02:00:00-05:00"),
        utc("2026-11-01T03:00:00-05:00"),
    ]
    # Each step moves forward in real time, whichever 01:00 it starts from.
    assert got == sorted(set(got))
