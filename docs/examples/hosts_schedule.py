"""The worker's scheduling rules are a pure step function: drive it with values, no threads."""

from datetime import UTC, datetime, timedelta

from adapters.hosts.schedule import (
    DequeueJob,
    FlushOutbox,
    JobFinished,
    JobLeased,
    NoJobFound,
    RenewLease,
    RunTick,
    Settings,
    Started,
    Stop,
    StopRequested,
    TickDone,
    Wakeup,
    initial_state,
    next_wakeup,
    step,
)


def main() -> None:
    # --8<-- [start:step]
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    state = initial_state(Settings(concurrency=2, lease_renew_interval=timedelta(seconds=15)))

    state, actions = step(state, t0, Started())
    assert actions == (RunTick(sweep=True), DequeueJob(slot=0), DequeueJob(slot=1))

    state, actions = step(state, t0, JobLeased(slot=0, job_id="job-1"))  # slot 0 runs job-1
    state, actions = step(state, t0, NoJobFound(slot=1))  # slot 1 waits for the poll interval
    state, actions = step(state, t0, TickDone())

    assert next_wakeup(state) == t0 + timedelta(milliseconds=200)  # slot 1 looks again
    later = t0 + timedelta(seconds=15)
    state, actions = step(state, later, Wakeup())  # the driver woke up late
    assert actions == (RunTick(sweep=False), DequeueJob(slot=1), RenewLease("job-1"))

    state, actions = step(state, later, StopRequested())  # SIGTERM: no new work, drain
    state, actions = step(state, later, NoJobFound(slot=1))
    state, actions = step(state, later, TickDone())
    state, actions = step(state, later, JobFinished(slot=0, job_id="job-1", outcome="completed"))
    assert actions == (FlushOutbox(), Stop())
    # --8<-- [end:step]
    assert state.counters.jobs_processed == 1


if __name__ == "__main__":
    main()
