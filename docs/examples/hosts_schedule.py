"""The worker's scheduling rules are a pure step function: drive it with values, no threads."""

from datetime import UTC, datetime, timedelta

from adapters.hosts.schedule import (
    DequeueEnded,
    DequeueJob,
    FlushOutbox,
    JobFinished,
    JobLeased,
    LeaseNext,
    NextJobWanted,
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
    state, actions = step(state, t0, DequeueEnded(slot=1))  # no job: slot 1 waits for the poll
    state, actions = step(state, t0, TickDone())

    assert next_wakeup(state) == t0 + timedelta(milliseconds=200)  # slot 1 looks again
    later = t0 + timedelta(seconds=15)
    state, actions = step(state, later, Wakeup())  # the driver woke up late
    assert actions == (RunTick(sweep=False), DequeueJob(slot=1), RenewLease("job-1"))

    state, actions = step(state, later, StopRequested())  # SIGTERM: no new work, drain
    state, actions = step(state, later, DequeueEnded(slot=1))
    state, actions = step(state, later, TickDone())
    state, actions = step(state, later, JobFinished(slot=0, job_id="job-1", outcome="completed"))
    state, actions = step(state, later, DequeueEnded(slot=0))  # slot 0's dequeue is over too
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
    # job-1's finish transaction asks before it leases the slot's next job: yes
    state, actions = step(state, t0, NextJobWanted(slot=0))
    assert actions == (LeaseNext(slot=0),)
    state, actions = step(state, t0, JobFinished(slot=0, job_id="job-1", outcome="completed"))
    state, actions = step(state, t0, JobLeased(slot=0, job_id="job-2"))
    assert state.running_jobs == ("job-2",)  # the lease to renew from now on

    state, actions = step(state, t0, StopRequested())  # the chain ends after job-2
    state, actions = step(state, t0, TickDone())
    state, actions = step(state, t0, NextJobWanted(slot=0))
    assert actions == ()  # no: job-2's finish leases nothing
    state, actions = step(state, t0, JobFinished(slot=0, job_id="job-2", outcome="failed"))
    assert (state.counters.jobs_processed, state.counters.jobs_failed) == (2, 1)

    state, actions = step(state, t0, DequeueEnded(slot=0))  # execute_jobs returned
    assert actions == (FlushOutbox(), Stop())
    # --8<-- [end:chain]


if __name__ == "__main__":
    main()
