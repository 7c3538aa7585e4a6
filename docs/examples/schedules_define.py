"""Defining schedules: cron or every, input, config, time zone; first fires, pause and resume."""

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from kernel import (
    InvalidInputError,
    Kernel,
    RunCreate,
    Schedule,
    ScheduleTick,
    ScheduleUpsert,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from testing import FakeClock, create_test_kernel


@attrs.frozen
class ReportRequest:
    region: str


@attrs.frozen
class BuildConfig:
    format: str = "pdf"


@attrs.frozen
class Report:
    region: str
    format: str


def build(ctx: StageContext[ReportRequest, BuildConfig]) -> Report:
    return Report(region=ctx.input.region, format=ctx.config.format)


build_stage = define_stage(
    id="build", name="Build", input=ReportRequest, output=Report, config=BuildConfig, execute=build
)
report = (
    WorkflowBuilder("report", "Report", input=ReportRequest, output=Report)
    .pipe(build_stage)
    .build()
)


# --8<-- [start:schedules]
nightly = Schedule(
    "nightly-report",  # the schedule's id: upserting the same id again replaces it
    "report",  # the workflow each fire starts a run of
    cron="0 3 * * *",  # five-field cron: 03:00 every day ...
    timezone="Europe/Berlin",  # ... in Berlin (the default is "UTC")
    input={"region": "eu"},  # each run's input, checked against the workflow now
    config={"build": {"format": "csv"}},  # each run's config, by stage id
)
refresh = Schedule(
    "refresh",
    "report",
    every=timedelta(minutes=15),  # or a fixed interval instead of cron
    input={"region": "us"},
)
SCHEDULES = [nightly, refresh]


def install_schedules(kernel: Kernel) -> None:
    """Call at every start or deploy: a schedule whose timing is unchanged keeps
    its next fire time, so restarting never delays or repeats a fire."""
    for schedule in SCHEDULES:
        kernel.dispatch(ScheduleUpsert(schedule))


# --8<-- [end:schedules]


# --8<-- [start:first-fire]
def test_when_schedules_first_fire() -> None:
    clock = FakeClock()  # 2025-01-01 00:00 UTC
    test = create_test_kernel(report, clock=clock)
    install_schedules(test.kernel)

    next_fires = {s.id: s.next_fire_at for s in test.store.get_schedules()}
    assert next_fires == {
        "refresh": datetime(2025, 1, 1, 0, 15, tzinfo=UTC),  # upsert time + every
        "nightly-report": datetime(2025, 1, 1, 2, 0, tzinfo=UTC),  # 03:00 in Berlin
    }

    # A cron schedule first fires at its next match strictly after the upsert:
    # upserted at exactly 03:00 Berlin time, it waits for tomorrow's 03:00.
    clock.set(datetime(2025, 1, 1, 2, 0, tzinfo=UTC))
    upserted = test.dispatch(ScheduleUpsert(attrs.evolve(nightly, id="nightly-2")))
    assert upserted.next_fire_at == datetime(2025, 1, 2, 2, 0, tzinfo=UTC)


# --8<-- [end:first-fire]


# --8<-- [start:tick]
def test_each_due_fire_starts_a_run() -> None:
    clock = FakeClock()
    test = create_test_kernel(report, clock=clock)
    install_schedules(test.kernel)

    clock.advance(timedelta(minutes=15))
    test.run_until_idle()  # runs jobs, but does not tick schedules
    assert test.store.list_runs() == []

    ticked = test.dispatch(ScheduleTick())  # what a host's tick does
    assert (len(ticked.created), ticked.skipped, ticked.problems) == (1, 0, [])
    test.run_until_idle()

    run = test.store.get_run(ticked.created[0])
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"region": "us", "format": "pdf"}
    assert run.metadata == {"schedule_id": "refresh", "fire_time": "2025-01-01T00:15:00+00:00"}
    [stored] = [s for s in test.store.get_schedules() if s.id == "refresh"]
    assert (stored.last_fire_at, stored.last_run_id) == (clock.now(), run.id)
    assert stored.next_fire_at == clock.now() + timedelta(minutes=15)


# --8<-- [end:tick]


# --8<-- [start:upsert-again]
def test_upserting_at_every_start_keeps_the_next_fire_time() -> None:
    clock = FakeClock()
    test = create_test_kernel(report, clock=clock)
    install_schedules(test.kernel)

    clock.advance(timedelta(minutes=10))  # the app restarts at 00:10
    install_schedules(test.kernel)
    [stored] = [s for s in test.store.get_schedules() if s.id == "refresh"]
    assert stored.next_fire_at == datetime(2025, 1, 1, 0, 15, tzinfo=UTC)  # not 00:25

    # Changing input, config or policies keeps it too; changing the timing
    # (cron, every or timezone) starts again from now.
    slower = test.dispatch(ScheduleUpsert(attrs.evolve(refresh, every=timedelta(minutes=20))))
    assert slower.next_fire_at == datetime(2025, 1, 1, 0, 30, tzinfo=UTC)


# --8<-- [end:upsert-again]


# --8<-- [start:pause]
def test_pause_and_resume() -> None:
    clock = FakeClock()
    test = create_test_kernel(report, clock=clock)
    test.dispatch(ScheduleUpsert(refresh))

    paused = test.dispatch(ScheduleUpsert(attrs.evolve(refresh, enabled=False)))
    assert paused.next_fire_at is None  # nothing is due while paused
    clock.advance(timedelta(hours=2, minutes=7))
    assert test.dispatch(ScheduleTick()).created == []  # no fire, and no catch-up later

    resumed = test.dispatch(ScheduleUpsert(refresh))  # enabled=True again, at 02:07
    assert resumed.next_fire_at == datetime(2025, 1, 1, 2, 22, tzinfo=UTC)


# --8<-- [end:pause]


# --8<-- [start:refused]
def test_a_bad_schedule_is_refused_naming_the_field() -> None:
    test = create_test_kernel(report)

    with pytest.raises(InvalidInputError) as refused:
        test.dispatch(ScheduleUpsert(Schedule("s", "report", cron="0 3 * *", timezone="CET/Paris")))
    assert refused.value.problems == (
        "cron: expected five fields (minute hour day month weekday), got 4 in '0 3 * *'",
        "timezone: unknown time zone 'CET/Paris'",
    )
    with pytest.raises(InvalidInputError) as refused:
        test.dispatch(ScheduleUpsert(attrs.evolve(refresh, input={"area": "us"})))
    assert refused.value.problems == (
        "input.region: required field missing",
        "input: unknown field 'area'",
    )
    assert test.store.get_schedules() == []


# --8<-- [end:refused]


def main() -> None:
    test = create_test_kernel(report)
    install_schedules(test.kernel)
    # A scheduled run is an ordinary run: anyone may create one by hand too.
    by_hand = test.dispatch(RunCreate(workflow_id="report", input={"region": "eu"}))
    test.run_until_idle()
    run = test.store.get_run(by_hand.workflow_run_id)
    assert run is not None and run.status == Status.COMPLETED


if __name__ == "__main__":
    main()
