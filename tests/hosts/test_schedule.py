"""The worker's scheduling step function on plain values: no threads, no clock (SPEC §8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hosts.schedule import (
    Action,
    DequeueJob,
    Dequeuing,
    FlushOutbox,
    Free,
    Happened,
    JobChained,
    JobEnd,
    JobFinished,
    JobLeased,
    JobsAvailable,
    NoJobFound,
    ReleaseLease,
    Releasing,
    RenewLease,
    Running,
    RunTick,
    Settings,
    Started,
    Stop,
    StopRequested,
    TickDone,
    Wakeup,
    WorkerState,
    initial_state,
    next_wakeup,
    step,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
SETTINGS = Settings(
    concurrency=2,
    orchestration_interval=timedelta(seconds=1),
    job_poll_interval=200 * MS,
    lease_renew_interval=timedelta(seconds=15),
    drain_timeout=timedelta(seconds=30),
    sweep_interval=timedelta(seconds=30),
)


class Worker:
    """Feeds the step function and remembers the last actions, like a driver would."""

    def __init__(self, settings: Settings = SETTINGS) -> None:
        self.state: WorkerState = initial_state(settings)
        self.now = T0

    def at(self, offset: timedelta) -> Worker:
        self.now = T0 + offset
        return self

    def feed(self, happened: Happened) -> tuple[Action, ...]:
        self.state, actions = step(self.state, self.now, happened)
        return actions


def started(settings: Settings = SETTINGS) -> Worker:
    worker = Worker(settings)
    worker.feed(Started())
    return worker


def test_start_runs_a_sweeping_tick_and_asks_a_job_for_every_slot() -> None:
    worker = Worker()
    assert worker.feed(Started()) == (RunTick(sweep=True), DequeueJob(0), DequeueJob(1))
    assert worker.state.phase == "running"
    assert worker.state.slots == (Dequeuing(), Dequeuing())


def test_a_job_is_asked_for_only_by_a_free_slot() -> None:
    """Hosts never prefetch (SPEC §10.1): busy slots ask for nothing, whatever happens."""
    worker = started()
    worker.feed(JobLeased(0, "a"))
    worker.feed(JobLeased(1, "b"))
    assert worker.feed(JobsAvailable()) == ()
    assert worker.at(5 * MS).feed(Wakeup()) == ()
    assert worker.feed(JobFinished(0, "a", "completed")) == (DequeueJob(0),)


def test_an_empty_dequeue_makes_free_slots_wait_then_one_slot_probes() -> None:
    worker = started()
    assert worker.feed(NoJobFound(0)) == ()
    assert worker.feed(NoJobFound(1)) == ()
    assert next_wakeup(worker.state) == T0 + 200 * MS
    assert worker.at(199 * MS).feed(Wakeup()) == ()
    assert worker.at(200 * MS).feed(Wakeup()) == (DequeueJob(0),)
    assert worker.at(300 * MS).feed(Wakeup()) == ()  # one probe at a time


def test_a_probe_that_finds_a_job_makes_every_free_slot_ask() -> None:
    worker = started()
    worker.feed(NoJobFound(0))
    worker.feed(NoJobFound(1))
    worker.at(200 * MS).feed(Wakeup())
    assert worker.feed(JobLeased(0, "a")) == (DequeueJob(1),)


def test_a_notification_from_the_store_wakes_idle_slots_at_once() -> None:
    worker = started()
    worker.feed(NoJobFound(0))
    worker.feed(NoJobFound(1))
    assert worker.at(10 * MS).feed(JobsAvailable()) == (DequeueJob(0), DequeueJob(1))


def test_a_finished_job_frees_its_slot_which_asks_again_at_once() -> None:
    """A finished stage may have queued the next group: no poll wait."""
    worker = started()
    worker.feed(JobLeased(0, "a"))
    worker.feed(NoJobFound(1))
    actions = worker.at(50 * MS).feed(JobFinished(0, "a", "completed"))
    assert actions == (DequeueJob(0), DequeueJob(1))
    assert worker.state.counters.jobs_processed == 1


def test_a_notification_while_a_slot_is_idle_brings_the_next_tick_forward() -> None:
    """A new run has no job until a tick claims it: the notification of its creation
    starts a tick (at most one per ``notified_tick_gap``), not only a dequeue."""
    worker = started()
    worker.at(5 * MS).feed(TickDone())
    worker.feed(NoJobFound(0))
    worker.feed(NoJobFound(1))
    actions = worker.at(20 * MS).feed(JobsAvailable())
    assert actions == (DequeueJob(0), DequeueJob(1))  # the tick waits for the gap
    assert next_wakeup(worker.state) == T0 + 50 * MS
    assert worker.at(50 * MS).feed(Wakeup()) == (RunTick(sweep=False),)
    worker.feed(TickDone(found_work=True))
    assert not worker.state.tick_requested
    assert next_wakeup(worker.state) == T0 + timedelta(seconds=1, milliseconds=50)


def test_a_notification_during_a_tick_asks_for_another_right_after_it() -> None:
    worker = started()
    worker.feed(NoJobFound(0))
    worker.feed(NoJobFound(1))
    worker.at(10 * MS).feed(JobsAvailable())  # the first tick may have claimed already
    assert worker.at(80 * MS).feed(TickDone()) == (RunTick(sweep=False),)


def test_a_notification_to_a_worker_with_no_idle_slot_leaves_the_ticks_alone() -> None:
    worker = started()
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    worker.feed(JobLeased(1, "b"))
    assert worker.at(500 * MS).feed(JobsAvailable()) == ()
    assert not worker.state.tick_requested


def test_ticks_come_every_interval_and_never_overlap() -> None:
    worker = started()
    assert worker.at(timedelta(seconds=1)).feed(Wakeup()) == ()  # the first is still running
    assert worker.feed(TickDone()) == (RunTick(sweep=False),)  # overdue: at once
    worker.at(timedelta(seconds=1, milliseconds=300)).feed(TickDone())
    assert next_wakeup(worker.state) == T0 + timedelta(seconds=2)
    assert worker.at(timedelta(seconds=2)).feed(Wakeup()) == (RunTick(sweep=False),)
    assert worker.state.counters.ticks == 2


def test_a_failed_tick_is_counted_and_the_next_tick_still_runs() -> None:
    worker = started()
    worker.feed(TickDone(ok=False))
    assert worker.state.counters.tick_errors == 1
    assert RunTick(sweep=False) in worker.at(timedelta(seconds=1)).feed(Wakeup())


def test_the_safety_net_sweeps_on_the_first_tick_and_then_every_sweep_interval() -> None:
    worker = started()
    sweeps = []
    for second in range(1, 62):
        worker.feed(TickDone())
        actions = worker.at(timedelta(seconds=second)).feed(Wakeup())
        sweeps += [second for action in actions if action == RunTick(sweep=True)]
    assert sweeps == [30, 60]


def test_a_tick_that_found_work_wakes_idle_slots() -> None:
    worker = started()
    worker.feed(NoJobFound(0))
    worker.feed(NoJobFound(1))
    assert worker.at(10 * MS).feed(TickDone(found_work=True)) == (DequeueJob(0), DequeueJob(1))


def test_the_lease_of_a_running_job_is_renewed_every_interval() -> None:
    worker = started()
    worker.feed(NoJobFound(1))
    worker.at(timedelta(seconds=2)).feed(JobLeased(0, "long"))
    assert next_wakeup(worker.state) == T0 + timedelta(seconds=17)
    renewals = [
        (second, action)
        for second in range(3, 40)
        for action in worker.at(timedelta(seconds=second)).feed(Wakeup())
        if isinstance(action, RenewLease)
    ]
    assert renewals == [(17, RenewLease("long")), (32, RenewLease("long"))]


def test_stop_stops_ticks_and_dequeues_and_waits_for_running_jobs() -> None:
    worker = started()
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    worker.feed(NoJobFound(1))
    assert worker.at(timedelta(seconds=1)).feed(StopRequested()) == ()
    assert worker.state.phase == "draining"
    assert worker.at(timedelta(seconds=5)).feed(JobsAvailable()) == ()
    actions = worker.at(timedelta(seconds=6)).feed(JobFinished(0, "a", "completed"))
    assert actions == (FlushOutbox(), Stop())
    final = worker.state
    assert final.phase == "stopped"


def test_stop_of_an_idle_worker_waits_for_its_tick_and_stops() -> None:
    worker = started()
    worker.feed(NoJobFound(0))
    worker.feed(NoJobFound(1))
    assert worker.feed(StopRequested()) == ()  # the first tick still runs
    assert worker.feed(TickDone()) == (FlushOutbox(), Stop())


def test_a_job_leased_after_a_stop_is_released_before_its_code_runs() -> None:
    worker = started()
    worker.feed(TickDone())
    worker.feed(NoJobFound(1))
    worker.feed(StopRequested())
    assert worker.feed(JobLeased(0, "late")) == (
        ReleaseLease("late", running=False),
        FlushOutbox(),
        Stop(),
    )
    assert worker.state.counters.leases_released == 1


def test_jobs_still_running_at_the_drain_deadline_are_released() -> None:
    worker = started()
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    worker.feed(JobLeased(1, "b"))
    worker.at(timedelta(seconds=10)).feed(StopRequested())
    wakeups = []
    while worker.state.phase != "stopped":
        wake = next_wakeup(worker.state)
        assert wake is not None
        wakeups.append(wake - T0)
        actions = worker.at(wake - T0).feed(Wakeup())
    assert wakeups == [timedelta(seconds=s) for s in (15, 30, 40)]  # renewals, then the deadline
    assert actions == (ReleaseLease("a"), ReleaseLease("b"), FlushOutbox(), Stop())
    # Their code may still finish later: the worker no longer counts it.
    assert worker.feed(JobFinished(0, "a", "skipped")) == ()
    assert worker.state.counters.jobs_processed == 0


def test_a_second_signal_skips_the_rest_of_the_drain() -> None:
    worker = started()
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    worker.feed(NoJobFound(1))
    worker.feed(StopRequested())
    assert worker.at(MS).feed(StopRequested(force=True)) == (
        ReleaseLease("a"),
        FlushOutbox(),
        Stop(),
    )


def test_a_worker_stopped_before_it_started_never_starts() -> None:
    worker = Worker()
    assert worker.feed(StopRequested()) == (Stop(),)
    assert worker.feed(Started()) == ()


def test_a_crash_is_dropping_the_state() -> None:
    """The state is one immutable value; a restarted worker starts from scratch and owes
    nothing to the lost one (the store's reaper takes back the lost worker's leases)."""
    worker = started()
    worker.feed(JobLeased(0, "a"))
    before = worker.state
    hash(before)  # plain, immutable values all the way down
    replay = started()
    replay.feed(JobLeased(0, "a"))
    assert replay.state == before  # the same inputs give the same state
    fresh = Worker()
    assert fresh.feed(Started()) == (RunTick(sweep=True), DequeueJob(0), DequeueJob(1))
    assert fresh.state.running_jobs == ()


def test_a_job_budget_ends_a_bounded_run_after_its_jobs_finish() -> None:
    bounded = Settings(concurrency=1, orchestration_interval=None, max_jobs=2)
    worker = Worker(bounded)
    assert worker.feed(Started()) == (DequeueJob(0),)
    worker.feed(JobLeased(0, "a"))
    assert worker.feed(JobFinished(0, "a", "completed")) == (DequeueJob(0),)
    worker.feed(JobLeased(0, "b"))
    assert worker.state.phase == "draining"
    assert worker.feed(JobFinished(0, "b", "failed")) == (FlushOutbox(), Stop())
    assert worker.state.counters.jobs_failed == 1


def test_a_bounded_run_that_stops_when_idle_ends_at_the_first_empty_dequeue() -> None:
    bounded = Settings(concurrency=1, orchestration_interval=None, stop_when_idle=True)
    worker = Worker(bounded)
    worker.feed(Started())
    assert worker.feed(NoJobFound(0)) == (FlushOutbox(), Stop())


def test_a_one_tick_run_ticks_once_and_stops() -> None:
    worker = Worker(Settings(concurrency=0, max_ticks=1))
    assert worker.feed(Started()) == (RunTick(sweep=True),)
    assert worker.feed(TickDone()) == (FlushOutbox(), Stop())


# -- chains: each finish transaction leases the slot's next job ----------------------------

CHAINING = evolve(SETTINGS, concurrency=1, max_chain=3)


def test_a_slot_runs_the_job_its_finish_leased_and_reports_the_chain_at_its_end() -> None:
    worker = Worker(CHAINING)
    assert worker.feed(Started()) == (RunTick(sweep=True), DequeueJob(0, max_jobs=3))
    worker.feed(JobLeased(0, "a"))
    assert worker.at(10 * MS).feed(JobChained(0, "a", "b")) == ()  # nothing to ask: busy
    assert worker.state.slots == (Running("b", T0 + 10 * MS, chain_index=1),)
    assert worker.at(20 * MS).feed(JobChained(0, "b", "c")) == ()
    assert worker.state.jobs_taken == 3
    assert worker.state.counters.jobs_processed == 0  # outcomes come with the chain's end
    actions = worker.at(30 * MS).feed(JobFinished(0, "c", "completed", ("completed", "failed")))
    assert actions == (DequeueJob(0, max_jobs=3),)
    assert (worker.state.counters.jobs_processed, worker.state.counters.jobs_failed) == (3, 1)
    assert worker.state.jobs_taken == 3


def test_the_lease_renewed_is_the_one_of_the_job_the_slot_now_runs() -> None:
    worker = Worker(CHAINING)
    worker.feed(Started())
    worker.feed(JobLeased(0, "a"))
    worker.at(timedelta(seconds=10)).feed(JobChained(0, "a", "b"))
    assert next_wakeup(worker.state) == T0 + timedelta(seconds=25)
    assert worker.at(timedelta(seconds=25)).feed(Wakeup()) == (RenewLease("b"),)


def test_a_chain_ends_at_its_limit_and_the_extra_job_goes_back() -> None:
    """Drivers pass ``DequeueJob.max_jobs`` on, so this is a safety net, kept all the same."""
    worker = Worker(CHAINING)
    worker.feed(Started())
    worker.feed(JobLeased(0, "a"))
    worker.feed(JobChained(0, "a", "b"))
    worker.feed(JobChained(0, "b", "c"))
    assert worker.feed(JobChained(0, "c", "d")) == (ReleaseLease("d", running=False),)
    assert worker.state.slots == (Releasing("d", ran=3),)
    assert worker.state.running_jobs == ()
    actions = worker.feed(JobFinished(0, "d", "released", ("completed",) * 3))
    assert actions == (DequeueJob(0, max_jobs=3),)
    assert worker.state.counters.jobs_processed == 3
    assert worker.state.counters.leases_released == 1


def test_a_stop_ends_a_chain_after_the_job_that_is_running() -> None:
    worker = Worker(CHAINING)
    worker.feed(Started())
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    worker.at(timedelta(seconds=1)).feed(StopRequested())
    # a's finish leased b before it saw the stop: b goes back before its code runs,
    # and the worker waits for the slot to report its chain.
    assert worker.feed(JobChained(0, "a", "b")) == (ReleaseLease("b", running=False),)
    assert worker.state.phase == "draining"
    assert worker.state.busy_slots == 1
    actions = worker.feed(JobFinished(0, "b", "released", ("failed",)))
    assert actions == (FlushOutbox(), Stop())
    counters = worker.state.counters
    assert (counters.jobs_processed, counters.jobs_failed, counters.leases_released) == (1, 1, 1)


def test_the_drain_deadline_releases_the_job_a_chain_is_running_now() -> None:
    worker = Worker(CHAINING)
    worker.feed(Started())
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    worker.feed(JobChained(0, "a", "b"))
    worker.feed(StopRequested(force=True))
    assert worker.state.phase == "stopped"
    assert worker.state.counters.leases_released == 1
    # The abandoned code of b finishes later and its finish leases c: c goes back too.
    assert worker.feed(JobChained(0, "b", "c")) == (ReleaseLease("c", running=False),)
    assert worker.feed(JobFinished(0, "c", "released", ("completed",))) == ()
    assert worker.state.counters.jobs_processed == 0


def test_jobs_settled_without_code_in_a_chain_count_against_the_job_budget() -> None:
    bounded = Settings(concurrency=1, orchestration_interval=None, max_jobs=5, max_chain=3)
    worker = Worker(bounded)
    assert worker.feed(Started()) == (DequeueJob(0, max_jobs=3),)
    worker.feed(JobLeased(0, "a"))
    # a's finish leased a job that was settled at once (its run had ended), then b ran.
    worker.feed(JobChained(0, "a", "b"))
    actions = worker.feed(JobFinished(0, "b", "completed", ("completed", "skipped")))
    assert worker.state.jobs_taken == 3
    assert actions == (DequeueJob(0, max_jobs=2),)
    worker.feed(JobLeased(0, "c"))
    worker.feed(JobChained(0, "c", "d"))
    assert worker.state.phase == "draining"  # the budget is spent
    assert worker.feed(JobChained(0, "d", "e")) == (ReleaseLease("e", running=False),)
    assert worker.feed(JobFinished(0, "e", "released", ("completed", "completed"))) == (
        FlushOutbox(),
        Stop(),
    )
    assert worker.state.counters.jobs_processed == 5


def test_settings_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match="job_poll_interval: expected a positive timedelta"):
        Settings(job_poll_interval=timedelta(0))
    with pytest.raises(ValueError, match="concurrency: expected an int >= 0, got -1"):
        Settings(concurrency=-1)
    with pytest.raises(ValueError, match="max_chain: expected an int >= 1, got 0"):
        Settings(max_chain=0)


# -- properties over random histories -----------------------------------------------

EVENT_KINDS = (
    # Weighted towards the events that move jobs, so that most histories lease, chain
    # and finish jobs before (and after) a stop.
    *("lease",) * 4,
    *("chain",) * 3,
    *("finish",) * 2,
    *("tick",) * 2,
    "wakeup",
    "empty",
    "notify",
    "stop",
    "force",
    "stray",
    "stray-chain",
)
OUTCOMES: tuple[JobEnd, ...] = ("completed", "failed", "skipped", "suspended", "error")


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, str, int]]:
    return draw(
        st.lists(
            st.tuples(
                # Mostly quick successions; now and then a long gap (renewals, deadlines).
                st.one_of(
                    st.integers(min_value=0, max_value=300),
                    st.integers(min_value=0, max_value=20_000),
                ),
                st.sampled_from(EVENT_KINDS),
                st.integers(min_value=0, max_value=11),
            ),
            max_size=80,
        )
    )


def _happening(state: WorkerState, kind: str, pick: int, serial: int) -> Happened:
    """A plausible event for ``state`` (a driver only reports on slots it started)."""
    asking = [i for i, slot in enumerate(state.slots) if isinstance(slot, Dequeuing)]
    running = [(i, s.job_id) for i, s in enumerate(state.slots) if isinstance(s, Running)]
    releasing = [(i, s.job_id) for i, s in enumerate(state.slots) if isinstance(s, Releasing)]
    earlier = OUTCOMES[: pick % 3]
    match kind:
        case "lease" if asking:
            return JobLeased(asking[pick % len(asking)], f"job-{serial}")
        case "chain" if running:
            slot, job_id = running[pick % len(running)]
            return JobChained(slot, job_id, f"job-{serial}")
        case "finish" if releasing:  # a chain cut short reports itself
            slot, job_id = releasing[pick % len(releasing)]
            return JobFinished(slot, job_id, "released", earlier)
        case "finish" if running:
            slot, job_id = running[pick % len(running)]
            return JobFinished(slot, job_id, OUTCOMES[pick % len(OUTCOMES)], earlier)
        case "empty" if asking:
            return NoJobFound(asking[pick % len(asking)])
        case "tick" if state.tick_running:
            return TickDone(found_work=pick % 2 == 0)
        case "notify":
            return JobsAvailable()
        case "stop":
            return StopRequested()
        case "force":
            return StopRequested(force=True)
        case "stray":  # a late report about a slot the worker no longer tracks
            return JobFinished(pick % 3, f"gone-{serial}", "skipped")
        case "stray-chain":  # an abandoned job's late finish leased one more job
            return JobChained(pick % 3, f"gone-{serial}", f"job-{serial}")
    return Wakeup()


@settings(max_examples=400, deadline=None)
@given(histories(), st.integers(min_value=1, max_value=3), st.integers(min_value=1, max_value=4))
def test_every_history_keeps_the_worker_s_promises(
    history: list[tuple[int, str, int]], concurrency: int, max_chain: int
) -> None:
    state = initial_state(
        Settings(
            concurrency=concurrency,
            orchestration_interval=timedelta(seconds=1),
            job_poll_interval=200 * MS,
            lease_renew_interval=timedelta(seconds=5),
            drain_timeout=timedelta(seconds=10),
            max_chain=max_chain,
        )
    )
    now = T0
    state, _ = step(state, now, Started())
    stops = 0
    held: set[str] = set()  # jobs leased to the worker that it has neither finished nor released
    chained: dict[int, int] = {}  # jobs run by each slot's current chain
    for serial, (delta_ms, kind, pick) in enumerate(history):
        before = state
        now += delta_ms * MS
        happened = _happening(state, kind, pick, serial)
        state, actions = step(state, now, happened)
        released = {action.job_id for action in actions if isinstance(action, ReleaseLease)}
        match happened:
            case JobLeased(slot=slot, job_id=job_id):
                held.add(job_id)
                chained[slot] = 1
            case JobChained(slot=slot, finished_job_id=finished, next_job_id=next_job_id):
                held.discard(finished)
                held.add(next_job_id)
                # The next job runs in the same slot, or goes back before its code runs.
                now_running = Running(next_job_id, now, _index(before, slot) + 1)
                runs = slot < concurrency and state.slots[slot] == now_running
                assert runs != (next_job_id in released)
                if runs:  # never after a stop, and never past the chain limit
                    assert not before.stop_requested
                    chained[slot] += 1
                    assert chained[slot] <= max_chain
            case JobFinished(job_id=job_id):
                held.discard(job_id)
        assert released <= held  # only what it holds, each once
        fresh = {getattr(happened, "job_id", None), getattr(happened, "next_job_id", None)}
        for action in actions:
            if isinstance(action, ReleaseLease):  # unrun: the job the event just leased
                new_lease = isinstance(happened, JobLeased | JobChained) and action.job_id in fresh
                assert action.running != new_lease
        held -= released
        for action in actions:
            if isinstance(action, DequeueJob):
                # Never prefetch: only a free slot asks, and never after a stop.
                assert not before.stop_requested
                freed_now = isinstance(happened, JobFinished | NoJobFound) and (
                    happened.slot == action.slot
                )
                assert isinstance(before.slots[action.slot], Free) or freed_now
                assert isinstance(state.slots[action.slot], Dequeuing)
                assert 1 <= action.max_jobs <= max_chain
            if isinstance(action, RunTick):
                # One tick at a time, and none after a stop.
                assert not before.stop_requested
                assert not before.tick_running or isinstance(happened, TickDone)
        stops += sum(1 for action in actions if isinstance(action, Stop))
        assert state.busy_slots <= concurrency
        # The worker renews, and at a deadline releases, exactly the jobs it holds.
        assert set(state.running_jobs) == held
        assert len(set(state.running_jobs)) == len(state.running_jobs)
        assert all(s.chain_index < max_chain for s in state.slots if isinstance(s, Running))
        counters = state.counters
        assert counters.jobs_failed <= counters.jobs_processed
        assert counters.jobs_processed >= before.counters.jobs_processed
        if state.phase == "stopped":
            assert all(isinstance(slot, Free) for slot in state.slots)
            assert not held
        wake = next_wakeup(state)
        assert wake is None or wake > now, "a due deadline must be acted on in the same step"
    assert stops <= 1


def _index(state: WorkerState, slot: int) -> int:
    running = state.slots[slot] if slot < len(state.slots) else None
    return running.chain_index if isinstance(running, Running) else -1
