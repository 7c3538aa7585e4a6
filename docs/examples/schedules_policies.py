"""Schedule policies on a fake clock: overlap (skip, allow), catch-up (latest, all, none)
and max_fires."""

from datetime import timedelta
from typing import Literal

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


def do_sync(ctx: StageContext[Nothing, Nothing]) -> Nothing:
    return Nothing()


sync_stage = define_stage(
    id="sync", name="Sync", input=Nothing, output=Nothing, config=Nothing, execute=do_sync
)
sync = WorkflowBuilder("sync", "Sync", input=Nothing, output=Nothing).pipe(sync_stage).build()


# --8<-- [start:helpers]
EVERY_15 = Schedule("sync", "sync", every=timedelta(minutes=15), input={})


def fired(test: TestKernel) -> list[str]:
    """The fire times of the schedule's runs, as HH:MM, oldest first."""
    times = [run.metadata["fire_time"] for run in test.store.list_runs()]
    return sorted(time[11:16] for time in times)


# --8<-- [end:helpers]


# --8<-- [start:overlap]
def test_overlap_skip_waits_for_the_previous_run() -> None:
    clock = FakeClock()  # 00:00
    test = create_test_kernel(sync, clock=clock)
    test.dispatch(ScheduleUpsert(EVERY_15))  # overlap="skip" is the default

    clock.advance(timedelta(minutes=15))  # 00:15: run A starts, and takes a while
    assert len(test.dispatch(ScheduleTick()).created) == 1
    clock.advance(timedelta(minutes=15))  # 00:30: A is still going, so no run
    assert test.dispatch(ScheduleTick()).skipped == 1
    test.run_until_idle()  # A ends
    clock.advance(timedelta(minutes=15))  # 00:45: run B
    assert len(test.dispatch(ScheduleTick()).created) == 1

    assert fired(test) == ["00:15", "00:45"]


def test_overlap_allow_starts_a_run_at_every_fire() -> None:
    clock = FakeClock()
    test = create_test_kernel(sync, clock=clock)
    test.dispatch(ScheduleUpsert(attrs.evolve(EVERY_15, overlap="allow")))

    for _ in range(3):  # 00:15, 00:30, 00:45; no run ends in between
        clock.advance(timedelta(minutes=15))
        test.dispatch(ScheduleTick())

    assert fired(test) == ["00:15", "00:30", "00:45"]


# --8<-- [end:overlap]


# --8<-- [start:catchup]
def after_downtime(
    catchup: Literal["latest", "all", "none"], down_until: timedelta
) -> tuple[list[str], str]:
    """No host ticks from 00:00 until ``down_until``; then one tick. Returns the fire
    times it started runs for and the schedule's next fire time (HH:MM)."""
    clock = FakeClock()
    test = create_test_kernel(sync, clock=clock)
    test.dispatch(ScheduleUpsert(attrs.evolve(EVERY_15, catchup=catchup, overlap="allow")))
    clock.advance(down_until)
    test.dispatch(ScheduleTick())
    [schedule] = test.store.get_schedules()
    assert schedule.next_fire_at is not None
    return fired(test), f"{schedule.next_fire_at:%H:%M}"


def test_catch_up_after_downtime() -> None:
    # Back at 01:05: 00:15, 00:30, 00:45 and 01:00 were missed.
    back = timedelta(hours=1, minutes=5)
    assert after_downtime("latest", back) == (["01:00"], "01:15")
    assert after_downtime("all", back) == (["00:15", "00:30", "00:45", "01:00"], "01:15")
    assert after_downtime("none", back) == ([], "01:15")
    # "none" still fires a time at most 60 seconds late.
    assert after_downtime("none", timedelta(hours=1, seconds=60)) == (["01:00"], "01:15")
    assert after_downtime("none", timedelta(hours=1, seconds=61)) == ([], "01:15")


# --8<-- [end:catchup]


# --8<-- [start:all-and-skip]
def test_catch_up_all_with_overlap_skip_starts_only_the_first() -> None:
    clock = FakeClock()
    test = create_test_kernel(sync, clock=clock)
    test.dispatch(ScheduleUpsert(attrs.evolve(EVERY_15, catchup="all")))  # overlap="skip"
    clock.advance(timedelta(hours=1, minutes=5))

    ticked = test.dispatch(ScheduleTick())

    # The 00:15 run has only just been created when 00:30 comes up: skipped, and so on.
    assert (len(ticked.created), ticked.skipped) == (1, 3)
    assert fired(test) == ["00:15"]


# --8<-- [end:all-and-skip]


# --8<-- [start:max-fires]
def test_max_fires_leaves_the_rest_for_the_next_tick() -> None:
    clock = FakeClock()
    test = create_test_kernel(sync, clock=clock)
    test.dispatch(ScheduleUpsert(attrs.evolve(EVERY_15, catchup="all", overlap="allow")))
    clock.advance(timedelta(hours=1, minutes=5))

    assert len(test.dispatch(ScheduleTick(max_fires=3)).created) == 3
    assert fired(test) == ["00:15", "00:30", "00:45"]
    assert len(test.dispatch(ScheduleTick(max_fires=3)).created) == 1  # oldest first
    assert fired(test) == ["00:15", "00:30", "00:45", "01:00"]


# --8<-- [end:max-fires]
