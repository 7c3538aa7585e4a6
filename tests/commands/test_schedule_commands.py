"""``schedule.upsert``, ``schedule.delete`` and ``schedule.tick`` (SPEC §14, §16.1):
each due fire time starts one run, with its idempotency key, in the transaction
that moves the schedule on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from attrs import evolve

from kernel import (
    Catchup,
    InvalidInputError,
    RunCancel,
    RunCreate,
    Schedule,
    ScheduleDelete,
    ScheduleTick,
    ScheduleUpsert,
    Status,
    define_stage,
)
from testing import FakeClock, SequentialIds, create_test_kernel
from tests.harness import T0, MakeKernel, idempotency_record, run_of
from tests.workflows import Calls, NoConfig, echo, pipeline


@attrs.frozen
class Named:
    name: str


EVERY_15 = Schedule("quarter", "echoes", every=timedelta(minutes=15), input={"value": 7})


def kernel_with_schedule(make_tk: MakeKernel, schedule: Schedule = EVERY_15) -> Any:
    tk = make_tk(pipeline("echoes", echo(Calls())))
    tk.dispatch(ScheduleUpsert(schedule))
    return tk


def scheduled_runs(tk: Any) -> list[Any]:
    runs = [run for run in tk.store.list_runs(limit=1000) if "schedule_id" in run.metadata]
    return sorted(runs, key=lambda run: run.metadata["fire_time"])


def fire_times(tk: Any) -> list[str]:
    return [run.metadata["fire_time"] for run in scheduled_runs(tk)]


def test_upsert_stores_the_schedule_with_its_first_fire_time(make_tk: MakeKernel) -> None:
    tk = make_tk(pipeline("echoes", echo(Calls())))

    result = tk.dispatch(ScheduleUpsert(EVERY_15))

    assert (result.created, result.next_fire_at) == (True, T0 + timedelta(minutes=15))
    [stored] = tk.store.get_schedules()
    assert stored.schedule == EVERY_15
    assert (stored.next_fire_at, stored.last_fire_at, stored.last_run_id) == (
        T0 + timedelta(minutes=15),
        None,
        None,
    )


def test_a_fire_time_equal_to_the_clock_is_due(make_tk: MakeKernel, clock: FakeClock) -> None:
    tk = kernel_with_schedule(make_tk)
    clock.advance(timedelta(minutes=14, seconds=59))
    assert tk.dispatch(ScheduleTick()).created == []

    clock.advance(timedelta(seconds=1))
    ticked = tk.dispatch(ScheduleTick())

    [run_id] = ticked.created
    run = run_of(tk.store, run_id)
    assert run.input == {"value": 7}
    assert run.metadata == {"schedule_id": "quarter", "fire_time": "2025-01-01T00:15:00+00:00"}
    [stored] = tk.store.get_schedules()
    assert stored.next_fire_at == T0 + timedelta(minutes=30)
    assert (stored.last_fire_at, stored.last_run_id) == (T0 + timedelta(minutes=15), run_id)
    assert tk.dispatch(ScheduleTick()).created == []


def test_the_run_of_a_fire_carries_its_idempotency_key(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """A caller creating the same run with the fire's key gets the scheduled run back."""
    tk = kernel_with_schedule(make_tk)
    clock.advance(timedelta(minutes=15))
    [run_id] = tk.dispatch(ScheduleTick()).created
    key = "schedule:quarter:2025-01-01T00:15:00+00:00"

    assert idempotency_record(tk.store, key, "run.create").state == "COMPLETED"
    again = tk.dispatch(
        RunCreate(
            workflow_id="echoes",
            input={"value": 7},
            metadata={"schedule_id": "quarter", "fire_time": "2025-01-01T00:15:00+00:00"},
            idempotency_key=key,
        )
    )
    assert again.workflow_run_id == run_id
    assert len(scheduled_runs(tk)) == 1


def test_scheduled_runs_are_ordinary_runs(make_tk: MakeKernel, clock: FakeClock) -> None:
    tk = kernel_with_schedule(make_tk)
    clock.advance(timedelta(minutes=15))
    [run_id] = tk.dispatch(ScheduleTick()).created

    tk.run_until_idle()

    assert run_of(tk.store, run_id).status == Status.COMPLETED


def test_overlap_skip_skips_while_the_previous_run_is_going(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    tk = kernel_with_schedule(make_tk)
    clock.advance(timedelta(minutes=15))
    [first] = tk.dispatch(ScheduleTick()).created
    clock.advance(timedelta(minutes=15))

    ticked = tk.dispatch(ScheduleTick())

    assert (ticked.created, ticked.skipped) == ([], 1)
    assert tk.store.get_schedules()[0].next_fire_at == T0 + timedelta(minutes=45)
    tk.dispatch(RunCancel(workflow_run_id=first))
    clock.advance(timedelta(minutes=15))
    assert len(tk.dispatch(ScheduleTick()).created) == 1


def test_overlap_allow_fires_beside_a_running_run(make_tk: MakeKernel, clock: FakeClock) -> None:
    tk = kernel_with_schedule(make_tk, evolve(EVERY_15, overlap="allow"))
    for _ in range(2):
        clock.advance(timedelta(minutes=15))
        assert len(tk.dispatch(ScheduleTick()).created) == 1
    assert len(scheduled_runs(tk)) == 2


@pytest.mark.parametrize(
    ("catchup", "down_for", "fired"),
    [
        # Down from 00:00 to 01:05: 00:15, 00:30, 00:45 and 01:00 were missed.
        ("latest", timedelta(hours=1, minutes=5), ["01:00"]),
        ("all", timedelta(hours=1, minutes=5), ["00:15", "00:30", "00:45", "01:00"]),
        ("none", timedelta(hours=1, minutes=5), []),
        # "none" still fires a time at most 60 s old.
        ("none", timedelta(hours=1, seconds=60), ["01:00"]),
    ],
)
def test_catch_up_after_downtime(
    make_tk: MakeKernel, clock: FakeClock, catchup: Catchup, down_for: timedelta, fired: list[str]
) -> None:
    tk = kernel_with_schedule(make_tk, evolve(EVERY_15, catchup=catchup, overlap="allow"))
    clock.advance(down_for)

    tk.dispatch(ScheduleTick())

    assert [t[11:16] for t in fire_times(tk)] == fired
    assert tk.store.get_schedules()[0].next_fire_at == T0 + timedelta(minutes=75)


def test_catch_up_all_beyond_max_fires_leaves_the_rest_for_the_next_tick(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    tk = kernel_with_schedule(make_tk, evolve(EVERY_15, catchup="all", overlap="allow"))
    clock.advance(timedelta(hours=1, minutes=5))

    assert len(tk.dispatch(ScheduleTick(max_fires=3)).created) == 3
    assert tk.store.get_schedules()[0].next_fire_at == T0 + timedelta(hours=1)
    assert len(tk.dispatch(ScheduleTick(max_fires=3)).created) == 1
    assert [t[11:16] for t in fire_times(tk)] == ["00:15", "00:30", "00:45", "01:00"]


def test_a_paused_schedule_is_never_due_and_resumes_after_the_resume(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    tk = kernel_with_schedule(make_tk)
    paused = tk.dispatch(ScheduleUpsert(evolve(EVERY_15, enabled=False)))
    assert paused == type(paused)(created=False, next_fire_at=None)
    clock.advance(timedelta(hours=2, minutes=1))
    assert tk.dispatch(ScheduleTick()).created == []

    resumed = tk.dispatch(ScheduleUpsert(EVERY_15))

    assert resumed.next_fire_at == clock.now() + timedelta(minutes=15)


def test_upserting_the_same_timing_again_keeps_the_next_fire_time(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """Hosts may upsert their schedules at every start without pushing fires back."""
    tk = kernel_with_schedule(make_tk)
    clock.advance(timedelta(minutes=10))

    same = tk.dispatch(ScheduleUpsert(evolve(EVERY_15, input={"value": 8})))
    assert same.next_fire_at == T0 + timedelta(minutes=15)
    assert tk.store.get_schedules()[0].input == {"value": 8}

    retimed = tk.dispatch(ScheduleUpsert(evolve(EVERY_15, every=timedelta(minutes=20))))
    assert retimed.next_fire_at == T0 + timedelta(minutes=30)


def test_a_cron_schedule_fires_at_wall_clock_times_of_its_zone(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """09:00 in New York is 14:00 UTC in winter and 13:00 UTC after spring-forward
    (2025-03-09)."""
    clock.set(datetime(2025, 3, 7, 15, 0, tzinfo=UTC))
    nine = Schedule(
        "morning", "echoes", cron="0 9 * * *", input={"value": 1}, timezone="America/New_York"
    )
    tk = kernel_with_schedule(make_tk, evolve(nine, overlap="allow"))
    assert tk.store.get_schedules()[0].next_fire_at == datetime(2025, 3, 8, 14, tzinfo=UTC)

    for day in (8, 9, 10):
        clock.set(datetime(2025, 3, day, 16, tzinfo=UTC))
        tk.dispatch(ScheduleTick())

    assert fire_times(tk) == [
        "2025-03-08T14:00:00+00:00",
        "2025-03-09T13:00:00+00:00",
        "2025-03-10T13:00:00+00:00",
    ]


def test_delete_removes_the_schedule_and_keeps_its_runs(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    tk = kernel_with_schedule(make_tk)
    clock.advance(timedelta(minutes=15))
    tk.dispatch(ScheduleTick())

    assert tk.dispatch(ScheduleDelete("quarter")).deleted is True
    assert tk.dispatch(ScheduleDelete("quarter")).deleted is False
    assert tk.store.get_schedules() == []
    assert len(scheduled_runs(tk)) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workflow_id": "nope"}, "workflow_id: workflow 'nope' is not registered"),
        ({"input": {"value": "seven"}}, "input.value: expected int, got 'seven'"),
        ({"every": None, "cron": "* * * * * *"}, "cron: expected five fields"),
        ({"every": None, "cron": "61 * * * *"}, "cron: "),
        ({"every": None, "cron": "every tuesday"}, "cron: "),
        ({"cron": "* * * * *"}, "give exactly one of cron and every, got both"),
        ({"every": None}, "give exactly one of cron and every, got neither"),
        ({"every": timedelta(0)}, "every: expected a positive timedelta"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone: unknown time zone 'Mars/Olympus_Mons'"),
        ({"config": {"nope": {}}}, "config: unknown stage 'nope'"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(
    make_tk: MakeKernel, changes: dict[str, Any], message: str
) -> None:
    tk = make_tk(pipeline("echoes", echo(Calls())))

    with pytest.raises(InvalidInputError, match=message):
        tk.dispatch(ScheduleUpsert(evolve(EVERY_15, **changes)))

    assert tk.store.get_schedules() == []


def test_a_fire_whose_input_no_longer_fits_is_reported_and_the_schedule_moves_on(
    store: Any, clock: FakeClock
) -> None:
    """The workflow changed under a stored schedule (a deploy): nothing is created."""
    first = create_test_kernel(pipeline("echoes", echo(Calls())), store=store, clock=clock)
    first.dispatch(ScheduleUpsert(EVERY_15))
    named = define_stage(
        id="hello",
        name="Hello",
        input=Named,
        output=Named,
        config=NoConfig,
        execute=lambda ctx: ctx.input,
    )
    changed = pipeline("echoes", named, input=Named)
    later = create_test_kernel(changed, store=store, clock=clock, ids=SequentialIds("b"))
    clock.advance(timedelta(minutes=15))

    ticked = later.dispatch(ScheduleTick())

    assert ticked.created == []
    assert ticked.problems and "schedule 'quarter'" in ticked.problems[0]
    assert store.get_schedules()[0].next_fire_at == T0 + timedelta(minutes=30)


def test_schedules_of_workflows_a_host_lacks_wait_for_one_that_has_them(
    store: Any, clock: FakeClock
) -> None:
    owner = create_test_kernel(pipeline("echoes", echo(Calls())), store=store, clock=clock)
    owner.dispatch(ScheduleUpsert(EVERY_15))
    other = create_test_kernel(store=store, clock=clock, ids=SequentialIds("b"))
    clock.advance(timedelta(minutes=15))

    assert other.dispatch(ScheduleTick()).created == []
    assert len(owner.dispatch(ScheduleTick()).created) == 1


def test_two_kernels_ticking_one_store_fire_each_time_once(store: Any, clock: FakeClock) -> None:
    kernels = [
        create_test_kernel(
            pipeline("echoes", echo(Calls())), store=store, clock=clock, ids=SequentialIds(p)
        )
        for p in ("a", "b")
    ]
    kernels[0].dispatch(ScheduleUpsert(evolve(EVERY_15, overlap="allow")))

    for _ in range(8):
        clock.advance(timedelta(minutes=7, seconds=30))
        for tk in kernels:
            tk.dispatch(ScheduleTick())

    times = [
        run.metadata["fire_time"]
        for run in store.list_runs(limit=100)
        if "fire_time" in run.metadata
    ]
    assert sorted(times) == sorted(set(times)) and len(times) == 4
