"""The worker's scheduling rules are a pure step function: drive it with values, no threads."""

from datetime import UTC, datetime, timedelta

from adapters.hosts.schedule import (
    DequeueJob,
    FlushOutbox,
    JobChained,
    JobFinished,
    JobLeased,
    NoJobFound,
    ReleaseLease,
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
    chain()


def chain() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    # --8<-- [start:chain]
    state = initial_state(Settings(concurrency=1, max_chain=50))
    state, actions = step(state, t0, Started())
    assert actions == (RunTick(sweep=True), DequeueJob(slot=0, max_jobs=50))

    state, actions = step(state, t0, JobLeased(slot=0, job_id="job-1"))
    # job-1's finish transaction leased job-2 for the same slot: its lease is renewed now
    chained = JobChained(slot=0, finished_job_id="job-1", next_job_id="job-2")
    state, actions = step(state, t0, chained)
    assert state.running_jobs == ("job-2",)

    state, actions = step(state, t0, StopRequested())  # the chain ends after job-2
    state, actions = step(state, t0, TickDone())
    chained = JobChained(slot=0, finished_job_id="job-2", next_job_id="job-3")
    state, actions = step(state, t0, chained)
    assert actions == (ReleaseLease("job-3", running=False),)  # back to the queue, unrun

    # The slot reports its chain: job-3 released unrun, job-1 and job-2 done.
    done = JobFinished(slot=0, job_id="job-3", outcome="released", earlier=("completed", "failed"))
    state, actions = step(state, t0, done)
    assert actions == (FlushOutbox(), Stop())
    assert (state.counters.jobs_processed, state.counters.jobs_failed) == (2, 1)
    # --8<-- [end:chain]


if __name__ == "__main__":
    main()
