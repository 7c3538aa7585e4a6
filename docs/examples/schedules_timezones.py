"""Cron schedules in a time zone, through daylight-saving changes (New York, 2025)."""

from datetime import UTC, datetime

import attrs

from kernel import (
    Schedule,
    ScheduleTick,
    ScheduleUpsert,
    StageContext,
    WorkflowBuilder,
    define_stage,
)
from testing import FakeClock, TestKernel, create_test_kernel


@attrs.frozen
class Nothing:
    pass


def backup(ctx: StageContext[Nothing, Nothing]) -> Nothing:
    return Nothing()


backup_stage = define_stage(
    id="backup", name="Backup", input=Nothing, output=Nothing, config=Nothing, execute=backup
)
backups = (
    WorkflowBuilder("backup", "Backup", input=Nothing, output=Nothing).pipe(backup_stage).build()
)


def fire_times(test: TestKernel) -> list[str]:
    """The UTC fire times of the scheduled runs, oldest first."""
    return sorted(run.metadata["fire_time"] for run in test.store.list_runs())


def tick_at(test: TestKernel, clock: FakeClock, *times: datetime) -> None:
    for time in times:
        clock.set(time)
        test.dispatch(ScheduleTick())


# --8<-- [start:spring-forward]
def test_a_skipped_time_fires_when_the_clocks_go_forward() -> None:
    """New York skips 02:00-03:00 on 9 March 2025: 02:30 fires at 03:00 that day."""
    clock = FakeClock(datetime(2025, 3, 7, 12, 0, tzinfo=UTC))
    test = create_test_kernel(backups, clock=clock)
    nightly = Schedule("backup", "backup", cron="30 2 * * *", timezone="America/New_York", input={})
    test.dispatch(ScheduleUpsert(attrs.evolve(nightly, overlap="allow")))

    tick_at(test, clock, *(datetime(2025, 3, day, 12, 0, tzinfo=UTC) for day in (8, 9, 10)))

    assert fire_times(test) == [
        "2025-03-08T07:30:00+00:00",  # 02:30 EST (UTC-5)
        "2025-03-09T07:00:00+00:00",  # 03:00 EDT: 02:30 does not exist that night
        "2025-03-10T06:30:00+00:00",  # 02:30 EDT (UTC-4)
    ]


# --8<-- [end:spring-forward]


# --8<-- [start:fall-back]
def test_a_repeated_time_fires_once_when_the_clocks_go_back() -> None:
    """New York has 01:00-02:00 twice on 2 November 2025: a daily 01:30 fires once."""
    clock = FakeClock(datetime(2025, 10, 31, 12, 0, tzinfo=UTC))
    test = create_test_kernel(backups, clock=clock)
    nightly = Schedule("backup", "backup", cron="30 1 * * *", timezone="America/New_York", input={})
    test.dispatch(ScheduleUpsert(attrs.evolve(nightly, overlap="allow")))

    tick_at(test, clock, *(datetime(2025, 11, day, 12, 0, tzinfo=UTC) for day in (1, 2, 3)))

    assert fire_times(test) == [
        "2025-11-01T05:30:00+00:00",  # 01:30 EDT (UTC-4)
        "2025-11-02T05:30:00+00:00",  # the first 01:30 (EDT); not again an hour later
        "2025-11-03T06:30:00+00:00",  # 01:30 EST (UTC-5)
    ]


def test_an_hourly_schedule_fires_in_both_repeated_hours() -> None:
    clock = FakeClock(datetime(2025, 11, 2, 3, 30, tzinfo=UTC))  # 23:30 EDT on 1 November
    test = create_test_kernel(backups, clock=clock)
    hourly = Schedule("backup", "backup", cron="0 * * * *", timezone="America/New_York", input={})
    test.dispatch(ScheduleUpsert(attrs.evolve(hourly, overlap="allow")))

    tick_at(test, clock, *(datetime(2025, 11, 2, hour, 0, tzinfo=UTC) for hour in range(4, 8)))

    assert fire_times(test) == [
        "2025-11-02T04:00:00+00:00",  # 00:00 EDT
        "2025-11-02T05:00:00+00:00",  # 01:00 EDT
        "2025-11-02T06:00:00+00:00",  # 01:00 EST, the same wall-clock hour again
        "2025-11-02T07:00:00+00:00",  # 02:00 EST
    ]


# --8<-- [end:fall-back]
