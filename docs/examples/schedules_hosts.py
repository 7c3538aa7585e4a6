"""Who fires schedules: a serverless cron function's maintenance tick, or several hosts
ticking one store, each fire time starting exactly one run."""

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from adapters.hosts import ServerlessHost
from adapters.memory import InMemoryStore
from kernel import (
    RunCreate,
    Schedule,
    ScheduleTick,
    ScheduleUpsert,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from testing import FakeClock, SequentialIds, create_test_kernel


@attrs.frozen
class Nothing:
    pass


def do_sync(ctx: StageContext[Nothing, Nothing]) -> Nothing:
    return Nothing()


sync_stage = define_stage(
    id="sync", name="Sync", input=Nothing, output=Nothing, config=Nothing, execute=do_sync
)
sync = WorkflowBuilder("sync", "Sync", input=Nothing, output=Nothing).pipe(sync_stage).build()
EVERY_15 = Schedule("sync", "sync", every=timedelta(minutes=15), input={})


# --8<-- [start:serverless]
def test_a_cron_function_every_minute_fires_the_schedules() -> None:
    clock = FakeClock()  # 00:00
    test = create_test_kernel(sync, clock=clock)  # in production: create_kernel(..., store=...)
    test.dispatch(ScheduleUpsert(EVERY_15))
    host = ServerlessHost(test.kernel, test.store, worker_id="cron-fn")

    def every_minute(event: Mapping[str, Any], context: object) -> dict[str, int]:
        """What the platform's cron trigger calls once a minute."""
        tick = host.run_maintenance_tick()  # fires due schedules, claims, polls, reaps, flushes
        done = host.process_available_jobs(max_jobs=20)
        return {"fired": tick.fired, "jobs": done.processed}

    calls = []
    for _ in range(60):  # the platform calls the function at 00:01, 00:02, ... 01:00
        clock.advance(timedelta(minutes=1))
        calls.append(every_minute({}, None))

    assert [minute for minute, call in enumerate(calls, 1) if call["fired"]] == [15, 30, 45, 60]
    runs = test.store.list_runs()
    assert len(runs) == 4 and all(run.status == Status.COMPLETED for run in runs)


# --8<-- [end:serverless]


# --8<-- [start:exactly-once]
def test_two_hosts_ticking_one_store_start_each_fire_once() -> None:
    store, clock = InMemoryStore(), FakeClock()  # or one SQLite file, one PostgreSQL database
    hosts = [
        create_test_kernel(sync, store=store, clock=clock, ids=SequentialIds(prefix=name))
        for name in ("a", "b")
    ]
    hosts[0].dispatch(ScheduleUpsert(attrs.evolve(EVERY_15, overlap="allow")))

    for _ in range(8):  # both hosts tick every 7.5 minutes, for an hour
        clock.advance(timedelta(minutes=7, seconds=30))
        for host in hosts:
            host.dispatch(ScheduleTick())

    fire_times = sorted(run.metadata["fire_time"][11:16] for run in store.list_runs())
    assert fire_times == ["00:15", "00:30", "00:45", "01:00"]

    # A run created with a fire's idempotency key is that fire's run, not another one.
    again = hosts[1].dispatch(
        RunCreate(
            workflow_id="sync",
            input={},
            metadata={"schedule_id": "sync", "fire_time": "2025-01-01T00:15:00+00:00"},
            idempotency_key="schedule:sync:2025-01-01T00:15:00+00:00",
        )
    )
    [first] = [run for run in store.list_runs() if run.metadata["fire_time"][11:16] == "00:15"]
    assert again.workflow_run_id == first.id
    assert len(store.list_runs()) == 4


# --8<-- [end:exactly-once]
