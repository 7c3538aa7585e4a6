"""The worker's scheduling step function on plain values: no threads, no clock (SPEC §8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hosts.schedule import (
    Action,
    DequeueEnded,
    DequeueJob,
    Dequeuing,
    Ending,
    FlushOutbox,
    Free,
    Happened,
    JobEnd,
    JobFinished,
    JobLeased,
    JobsAvailable,
    LeaseNext,
    NextJobWanted,
    ReleaseLease,
    RenewLease,
    Running,
    RunTick,
    Settings,
    Slot,
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

    def slots(self) -> tuple[Slot, ...]:
        return self.state.slots


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
    assert worker.feed(JobFinished(0, "a", "completed")) == ()  # its dequeue is not over yet
    assert worker.state.slots[0] == Ending(taken=1)
    assert worker.feed(DequeueEnded(0)) == (DequeueJob(0),)


def test_an_empty_dequeue_makes_free_slots_wait_then_one_slot_probes() -> None:
    worker = started()
    assert worker.feed(DequeueEnded(0)) == ()
    assert worker.feed(DequeueEnded(1)) == ()
    assert next_wakeup(worker.state) == T0 + 200 * MS
    assert worker.at(199 * MS).feed(Wakeup()) == ()
    assert worker.at(200 * MS).feed(Wakeup()) == (DequeueJob(0),)
    assert worker.at(300 * MS).feed(Wakeup()) == ()  # one probe at a time


def test_each_job_a_probe_finds_lets_one_more_free_slot_ask() -> None:
    """Fan-out one slot at a time: a job found says there may be more, not how many
    (every free slot asking at once would mostly find nothing)."""
    worker = started(evolve(SETTINGS, concurrency=3))
    for slot in range(3):
        worker.feed(DequeueEnded(slot))
    assert worker.at(200 * MS).feed(Wakeup()) == (DequeueJob(0),)
    assert worker.feed(JobLeased(0, "a")) == (DequeueJob(1),)
    assert worker.feed(JobLeased(1, "b")) == (DequeueJob(2),)
    assert worker.feed(DequeueEnded(2)) == ()  # the queue is empty again: wait for the poll
    assert next_wakeup(worker.state) == T0 + 400 * MS


def test_the_next_job_of_a_chain_sets_no_other_slot_asking() -> None:
    """The finish that leased it queued it: it says nothing of the rest of the queue."""
    worker = started(evolve(SETTINGS, max_chain=5))
    worker.feed(JobLeased(0, "a"))
    worker.feed(DequeueEnded(1))  # slot 1 found nothing: it waits for the poll
    worker.feed(NextJobWanted(0))
    assert worker.at(10 * MS).feed(JobFinished(0, "a", "completed", queued=False)) == ()
    assert worker.feed(JobLeased(0, "b")) == ()
    assert worker.state.slots == (Running("b", T0 + 10 * MS, taken=2), Free())


def test_a_notification_from_the_store_sets_one_idle_slot_asking_at_once() -> None:
    worker = started()
    worker.feed(DequeueEnded(0))
    worker.feed(DequeueEnded(1))
    assert worker.at(10 * MS).feed(JobsAvailable()) == (DequeueJob(0, claim=True),)
    assert worker.feed(JobLeased(0, "a")) == (DequeueJob(1),)  # it found one: fan out


def test_a_finished_job_that_queued_jobs_sets_a_free_slot_asking_at_once() -> None:
    """A finished stage that queued the next group (and did not lease all of it in its
    own transaction) is followed by a look at once: no poll wait. It is counted at once."""
    worker = started()
    worker.feed(JobLeased(0, "a"))
    worker.feed(DequeueEnded(1))
    assert worker.at(50 * MS).feed(JobFinished(0, "a", "completed")) == (DequeueJob(1),)
    assert worker.state.counters.jobs_processed == 1
    assert worker.feed(DequeueEnded(0)) == ()  # slot 1 is looking: one at a time
    assert worker.feed(JobLeased(1, "b")) == (DequeueJob(0),)


def test_a_finished_job_that_queued_nothing_leaves_idle_slots_to_the_poll() -> None:
    worker = started()
    worker.feed(JobLeased(0, "a"))
    worker.feed(DequeueEnded(1))
    finished = JobFinished(0, "a", "completed", queued=False)
    assert worker.at(50 * MS).feed(finished) == ()
    assert worker.state.counters.jobs_processed == 1
    assert worker.feed(DequeueEnded(0)) == ()
    assert next_wakeup(worker.state) == T0 + 200 * MS
    assert worker.at(200 * MS).feed(Wakeup()) == (DequeueJob(0),)


def test_a_dequeue_that_failed_frees_its_slot_and_waits_for_the_poll() -> None:
    worker = started()
    worker.feed(JobLeased(0, "a"))
    worker.feed(DequeueEnded(1))
    # The host's call raised while job a ran: a counts as ended in error.
    assert worker.at(10 * MS).feed(DequeueEnded(0, failed=True)) == ()
    assert worker.state.slots == (Free(), Free())
    assert worker.state.running_jobs == ()
    counters = worker.state.counters
    assert (counters.jobs_processed, counters.jobs_failed) == (1, 1)
    assert next_wakeup(worker.state) == T0 + 210 * MS


def test_a_notification_while_a_slot_is_idle_makes_the_next_dequeue_claim() -> None:
    """A new run has no job until it is claimed: the notification of its creation (from
    another process) makes one free slot's dequeue claim first, in the transaction
    that leases its first job; no tick is needed."""
    worker = started()
    worker.at(5 * MS).feed(TickDone())
    worker.feed(DequeueEnded(0))
    worker.feed(DequeueEnded(1))
    actions = worker.at(20 * MS).feed(JobsAvailable())
    assert actions == (DequeueJob(0, claim=True),)
    assert not worker.state.tick_requested and not worker.state.claim_wanted
    assert next_wakeup(worker.state) == T0 + timedelta(seconds=1)  # the usual tick


def test_a_notification_to_a_worker_that_does_not_tick_asks_for_a_tick() -> None:
    worker = started(evolve(SETTINGS, orchestration_interval=None, concurrency=1))
    worker.feed(DequeueEnded(0))
    assert worker.at(10 * MS).feed(JobsAvailable()) == (DequeueJob(0),)
    assert worker.state.tick_requested and not worker.state.claim_wanted


def test_a_tick_whose_claim_was_full_is_followed_by_another_after_the_gap() -> None:
    """Runs created faster than one claim a second takes them are not left waiting
    for the interval: a full claim asks for the next tick ``notified_tick_gap`` later."""
    worker = started()
    worker.at(5 * MS).feed(TickDone(found_work=True, backlog=True))
    assert next_wakeup(worker.state) == T0 + 50 * MS
    assert worker.at(50 * MS).feed(Wakeup()) == (RunTick(sweep=False),)
    worker.at(60 * MS).feed(TickDone(found_work=True))  # this claim was not full
    assert next_wakeup(worker.state) == T0 + timedelta(seconds=1, milliseconds=50)


def test_a_notification_during_a_tick_is_claimed_by_a_dequeue_not_another_tick() -> None:
    worker = started()
    worker.feed(DequeueEnded(0))
    worker.feed(DequeueEnded(1))
    # The first tick may have claimed already: a dequeue claims what it did not.
    assert worker.at(10 * MS).feed(JobsAvailable()) == (DequeueJob(0, claim=True),)
    assert worker.at(80 * MS).feed(TickDone()) == ()


def test_a_notification_to_a_worker_with_no_idle_slot_leaves_the_ticks_alone() -> None:
    worker = started()
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    worker.feed(JobLeased(1, "b"))
    assert worker.at(500 * MS).feed(JobsAvailable()) == ()
    assert not worker.state.tick_requested


def test_a_run_created_in_the_process_is_claimed_by_the_next_dequeue_at_once() -> None:
    """A run created beside the worker, through its own store object, is claimed by a
    free slot's dequeue right away: no tick, so no ``notified_tick_gap`` to wait for."""
    worker = started()
    worker.at(5 * MS).feed(TickDone())
    worker.feed(DequeueEnded(0))
    worker.feed(DequeueEnded(1))
    actions = worker.at(20 * MS).feed(JobsAvailable(local=True))
    assert actions == (DequeueJob(0, claim=True),)  # one slot claims (and leases)
    assert not worker.state.tick_requested and not worker.state.claim_wanted
    assert next_wakeup(worker.state) == T0 + timedelta(seconds=1)  # the usual tick


def test_a_run_created_while_every_slot_is_busy_is_claimed_when_a_slot_runs_dry() -> None:
    """The queue does not hold the new run's jobs yet: the slot that finds it empty
    claims at once instead of waiting for the poll, and only then waits."""
    worker = started()
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    worker.feed(JobLeased(1, "b"))
    assert worker.at(10 * MS).feed(JobsAvailable(local=True)) == ()
    assert worker.state.claim_wanted
    worker.feed(JobFinished(0, "a", "completed"))
    assert worker.feed(DequeueEnded(0)) == (DequeueJob(0, claim=True),)
    assert worker.feed(DequeueEnded(0)) == ()  # claimed nothing, found nothing: now it waits
    assert worker.state.idle_until == T0 + 210 * MS


def test_a_run_announced_as_the_worker_starts_is_claimed_by_its_first_dequeue() -> None:
    """The driver listens before it starts: its first tick and dequeues start at once."""
    worker = Worker()
    assert worker.feed(JobsAvailable(local=True)) == ()
    assert worker.feed(Started()) == (
        RunTick(sweep=True),
        DequeueJob(0, claim=True),
        DequeueJob(1),
    )


def test_a_worker_that_does_not_tick_does_not_claim_for_a_local_run() -> None:
    """Bounded job-only runs (the serverless calls) leave claims to the ticks."""
    worker = started(evolve(SETTINGS, orchestration_interval=None, concurrency=1))
    worker.feed(DequeueEnded(0))
    assert worker.at(10 * MS).feed(JobsAvailable(local=True)) == (DequeueJob(0),)
    assert not worker.state.claim_wanted


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
    worker.feed(DequeueEnded(0))
    worker.feed(DequeueEnded(1))
    assert worker.at(10 * MS).feed(TickDone(found_work=True)) == (DequeueJob(0),)
    assert worker.feed(JobLeased(0, "a")) == (DequeueJob(1),)


def test_the_lease_of_a_running_job_is_renewed_every_interval() -> None:
    worker = started()
    worker.feed(DequeueEnded(1))
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
    worker.feed(DequeueEnded(1))
    assert worker.at(timedelta(seconds=1)).feed(StopRequested()) == ()
    assert worker.state.phase == "draining"
    assert worker.at(timedelta(seconds=5)).feed(JobsAvailable()) == ()
    assert worker.at(timedelta(seconds=6)).feed(JobFinished(0, "a", "completed")) == ()
    assert worker.feed(DequeueEnded(0)) == (FlushOutbox(), Stop())
    final = worker.state
    assert final.phase == "stopped"
    assert final.counters.jobs_processed == 1


def test_stop_of_an_idle_worker_waits_for_its_tick_and_stops() -> None:
    worker = started()
    worker.feed(DequeueEnded(0))
    worker.feed(DequeueEnded(1))
    assert worker.feed(StopRequested()) == ()  # the first tick still runs
    assert worker.feed(TickDone()) == (FlushOutbox(), Stop())


def test_a_dequeue_asking_when_the_stop_comes_runs_the_job_it_gets_within_the_drain() -> None:
    """The stop came after the slot asked: its job is leased and started already, so it
    runs like any running job (nothing is started and then handed back unrun)."""
    worker = started()
    worker.feed(TickDone())
    worker.feed(DequeueEnded(1))
    worker.feed(StopRequested())
    assert worker.feed(JobLeased(0, "late")) == ()
    assert worker.state.running_jobs == ("late",)
    assert worker.feed(NextJobWanted(0)) == ()  # but nothing after it
    worker.feed(JobFinished(0, "late", "completed"))
    assert worker.feed(DequeueEnded(0)) == (FlushOutbox(), Stop())
    assert worker.state.counters.leases_released == 0


def test_a_job_leased_after_the_drain_deadline_goes_back_before_its_code_runs() -> None:
    worker = started()
    worker.feed(TickDone())
    worker.feed(DequeueEnded(1))
    assert worker.feed(StopRequested(force=True)) == (FlushOutbox(), Stop())
    assert worker.feed(JobLeased(0, "late")) == (ReleaseLease("late"),)
    assert worker.state.counters.leases_released == 1
    assert worker.feed(DequeueEnded(0)) == ()


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
    assert worker.feed(NextJobWanted(0)) == ()
    assert worker.feed(JobFinished(0, "a", "skipped")) == ()
    assert worker.feed(DequeueEnded(0)) == ()
    assert worker.state.counters.jobs_processed == 0


def test_a_second_signal_skips_the_rest_of_the_drain() -> None:
    worker = started()
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    worker.feed(DequeueEnded(1))
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
    worker.feed(JobFinished(0, "a", "completed"))
    assert worker.feed(DequeueEnded(0)) == (DequeueJob(0),)
    worker.feed(JobLeased(0, "b"))
    assert worker.state.phase == "draining"
    assert worker.feed(JobFinished(0, "b", "failed")) == ()
    assert worker.feed(DequeueEnded(0)) == (FlushOutbox(), Stop())
    assert worker.state.counters.jobs_failed == 1


def test_a_bounded_run_that_stops_when_idle_ends_at_the_first_empty_dequeue() -> None:
    bounded = Settings(concurrency=1, orchestration_interval=None, stop_when_idle=True)
    worker = Worker(bounded)
    worker.feed(Started())
    assert worker.feed(DequeueEnded(0)) == (FlushOutbox(), Stop())


def test_a_one_tick_run_ticks_once_and_stops() -> None:
    worker = Worker(Settings(concurrency=0, max_ticks=1))
    assert worker.feed(Started()) == (RunTick(sweep=True),)
    assert worker.feed(TickDone()) == (FlushOutbox(), Stop())


# -- chains: each finish transaction may lease the slot's next job -------------------------

CHAINING = evolve(SETTINGS, concurrency=1, max_chain=3)


def test_a_slot_chains_when_allowed_and_reports_each_job_as_it_finishes() -> None:
    worker = Worker(CHAINING)
    assert worker.feed(Started()) == (RunTick(sweep=True), DequeueJob(0, max_jobs=3))
    worker.feed(JobLeased(0, "a"))
    # a's finish transaction asks before it leases the slot's next job
    assert worker.feed(NextJobWanted(0)) == (LeaseNext(0),)
    assert worker.slots() == (Running("a", T0, taken=1, chains=True),)
    assert worker.feed(JobFinished(0, "a", "completed")) == ()  # busy: nothing to ask
    assert worker.slots() == (Dequeuing(taken=1),)
    assert worker.state.counters.jobs_processed == 1  # counted as it finished
    worker.at(10 * MS).feed(JobLeased(0, "b"))
    assert worker.slots() == (Running("b", T0 + 10 * MS, taken=2),)
    assert worker.feed(NextJobWanted(0)) == (LeaseNext(0),)
    worker.feed(JobFinished(0, "b", "failed"))
    worker.at(20 * MS).feed(JobLeased(0, "c"))
    assert worker.feed(NextJobWanted(0)) == ()  # max_chain: c is the chain's last job
    worker.feed(JobFinished(0, "c", "completed"))
    assert worker.slots() == (Ending(taken=3),)
    assert worker.at(30 * MS).feed(DequeueEnded(0)) == (DequeueJob(0, max_jobs=3),)
    assert (worker.state.counters.jobs_processed, worker.state.counters.jobs_failed) == (3, 1)
    assert worker.state.jobs_taken == 3


def test_a_group_runs_its_jobs_on_one_slot_and_reports_them_when_they_commit() -> None:
    worker = Worker(evolve(CHAINING, max_chain=5))
    worker.feed(Started())
    worker.feed(JobLeased(0, "a"))
    # b was leased with a (a group): it starts once a's code has run
    assert worker.at(5 * MS).feed(JobLeased(0, "b", after="a")) == ()
    assert worker.slots() == (Running("b", T0 + 5 * MS, taken=2, earlier=("a",)),)
    assert worker.state.running_jobs == ("b",)  # only b's lease needs renewing
    # the group's finishes commit together, with the next group's lease
    assert worker.feed(NextJobWanted(0)) == (LeaseNext(0),)
    assert worker.slots() == (Running("b", T0 + 5 * MS, taken=2, chains=True, earlier=("a",)),)
    worker.feed(JobFinished(0, "settled", "skipped", ran=False))  # of the group, not run
    worker.feed(JobFinished(0, "a", "completed"))
    assert worker.slots() == (Running("b", T0 + 5 * MS, taken=3, chains=True),)
    worker.feed(JobFinished(0, "b", "failed"))
    assert worker.slots() == (Dequeuing(taken=3),)
    assert (worker.state.counters.jobs_processed, worker.state.counters.jobs_failed) == (3, 1)
    assert worker.state.jobs_taken == 3


def test_a_lease_that_does_not_follow_the_running_job_goes_back() -> None:
    worker = Worker(CHAINING)
    worker.feed(Started())
    worker.feed(JobLeased(0, "a"))
    assert worker.feed(JobLeased(0, "late")) == (ReleaseLease("late"),)
    assert worker.feed(JobLeased(0, "late2", after="other")) == (ReleaseLease("late2"),)
    assert worker.feed(JobFinished(0, "stray", "completed")) == ()
    assert worker.slots() == (Running("a", T0, taken=1),)
    assert worker.state.counters.jobs_processed == 0


def test_a_chain_whose_next_lease_finds_nothing_leaves_the_slot_idle() -> None:
    worker = Worker(CHAINING)
    worker.feed(Started())
    worker.feed(JobLeased(0, "a"))
    worker.feed(NextJobWanted(0))
    worker.feed(JobFinished(0, "a", "completed"))
    assert worker.at(10 * MS).feed(DequeueEnded(0)) == ()  # the queue is empty
    assert next_wakeup(worker.state) == T0 + 210 * MS


def test_the_lease_renewed_is_the_one_of_the_job_the_slot_now_runs() -> None:
    worker = Worker(CHAINING)
    worker.feed(Started())
    worker.feed(JobLeased(0, "a"))
    worker.at(timedelta(seconds=10)).feed(NextJobWanted(0))
    worker.feed(JobFinished(0, "a", "completed"))
    worker.feed(JobLeased(0, "b"))
    assert next_wakeup(worker.state) == T0 + timedelta(seconds=25)
    assert worker.at(timedelta(seconds=25)).feed(Wakeup()) == (RenewLease("b"),)


def test_a_stop_ends_a_chain_after_the_job_that_is_running() -> None:
    """The finish of the running job asks, and is told no: nothing is leased after a stop."""
    worker = Worker(CHAINING)
    worker.feed(Started())
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    worker.at(timedelta(seconds=1)).feed(StopRequested())
    assert worker.feed(NextJobWanted(0)) == ()
    assert worker.feed(JobFinished(0, "a", "failed")) == ()
    assert worker.state.busy_slots == 1  # until its dequeue has ended
    assert worker.feed(DequeueEnded(0)) == (FlushOutbox(), Stop())
    counters = worker.state.counters
    assert (counters.jobs_processed, counters.jobs_failed, counters.leases_released) == (1, 1, 0)


def test_a_job_leased_by_a_finish_allowed_before_the_stop_runs_within_the_drain() -> None:
    worker = Worker(CHAINING)
    worker.feed(Started())
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    assert worker.feed(NextJobWanted(0)) == (LeaseNext(0),)
    worker.feed(StopRequested())
    worker.feed(JobFinished(0, "a", "completed"))
    assert worker.feed(JobLeased(0, "b")) == ()
    assert worker.state.running_jobs == ("b",)
    assert worker.feed(NextJobWanted(0)) == ()
    worker.feed(JobFinished(0, "b", "completed"))
    assert worker.feed(DequeueEnded(0)) == (FlushOutbox(), Stop())
    assert worker.state.counters.jobs_processed == 2


def test_asked_again_after_a_stop_the_answer_is_no() -> None:
    """A finish transaction retried after a version conflict asks again; its first
    attempt leased nothing (it was rolled back), so the stop decides."""
    worker = Worker(CHAINING)
    worker.feed(Started())
    worker.feed(JobLeased(0, "a"))
    assert worker.feed(NextJobWanted(0)) == (LeaseNext(0),)
    worker.feed(StopRequested())
    assert worker.feed(NextJobWanted(0)) == ()
    assert worker.slots() == (Running("a", T0, taken=1, chains=False),)


def test_the_drain_deadline_releases_the_job_a_chain_is_running_now() -> None:
    worker = Worker(CHAINING)
    worker.feed(Started())
    worker.feed(TickDone())
    worker.feed(JobLeased(0, "a"))
    worker.feed(NextJobWanted(0))
    worker.feed(JobFinished(0, "a", "completed"))
    worker.feed(JobLeased(0, "b"))
    assert worker.feed(StopRequested(force=True)) == (ReleaseLease("b"), FlushOutbox(), Stop())
    assert worker.state.counters.leases_released == 1
    # The abandoned code of b finishes later: its finish leases nothing more.
    assert worker.feed(NextJobWanted(0)) == ()
    assert worker.feed(JobFinished(0, "b", "completed")) == ()
    assert worker.feed(DequeueEnded(0)) == ()
    assert worker.state.counters.jobs_processed == 1


def test_jobs_settled_without_running_count_against_the_chain_and_the_job_budget() -> None:
    bounded = Settings(concurrency=1, orchestration_interval=None, max_jobs=5, max_chain=3)
    worker = Worker(bounded)
    assert worker.feed(Started()) == (DequeueJob(0, max_jobs=3),)
    worker.feed(JobLeased(0, "a"))
    worker.feed(NextJobWanted(0))
    worker.feed(JobFinished(0, "a", "completed"))
    # a's finish leased a job the kernel settled at once (its run had ended) ...
    worker.feed(JobFinished(0, "x", "skipped"))
    assert worker.slots() == (Ending(taken=2),)
    # ... then the kernel asks before it leases again.
    assert worker.feed(NextJobWanted(0)) == (LeaseNext(0),)
    worker.feed(JobLeased(0, "b"))
    assert worker.feed(NextJobWanted(0)) == ()  # three jobs: the chain's limit
    worker.feed(JobFinished(0, "b", "completed"))
    assert worker.feed(DequeueEnded(0)) == (DequeueJob(0, max_jobs=3),)
    assert worker.state.jobs_taken == 3
    worker.feed(JobLeased(0, "c"))
    assert worker.feed(NextJobWanted(0)) == (LeaseNext(0),)
    worker.feed(JobFinished(0, "c", "completed"))
    worker.feed(JobLeased(0, "d"))
    assert worker.state.phase == "draining"  # the budget is spent
    assert worker.feed(NextJobWanted(0)) == ()
    worker.feed(JobFinished(0, "d", "completed"))
    assert worker.feed(DequeueEnded(0)) == (FlushOutbox(), Stop())
    assert worker.state.counters.jobs_processed == 5


def test_the_job_budget_counts_the_next_jobs_other_slots_were_allowed() -> None:
    bounded = Settings(concurrency=2, orchestration_interval=None, max_jobs=3, max_chain=5)
    worker = Worker(bounded)
    assert worker.feed(Started()) == (DequeueJob(0, max_jobs=5), DequeueJob(1, max_jobs=5))
    worker.feed(JobLeased(0, "a"))
    worker.feed(JobLeased(1, "b"))
    assert worker.feed(NextJobWanted(0)) == (LeaseNext(0),)  # the third job
    assert worker.feed(NextJobWanted(1)) == ()  # there is no fourth


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
    *("ask",) * 3,
    *("finish",) * 3,
    *("end",) * 2,
    *("tick",) * 2,
    "settle",
    "fail",
    "wakeup",
    "notify",
    "notify-local",
    "stop",
    "force",
    "stray",
    "stray-ask",
    "stray-lease",
    "group-lease",
    "group-finish",
    "group-settle",
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
    """A plausible event for ``state``: what ``Kernel.execute_jobs`` and a driver report
    about the slots they work for, plus late reports about slots the worker gave up."""
    slots = list(enumerate(state.slots))
    asking = [i for i, slot in slots if isinstance(slot, Dequeuing)]
    running = [(i, s.job_id) for i, s in slots if isinstance(s, Running)]
    grouped = [(i, s.earlier) for i, s in slots if isinstance(s, Running) and s.earlier]
    # Groups: only hosts without a job budget (WorkerHost) lease them, each within its
    # dequeue's max_jobs (the chain's limit).
    settings = state.settings
    growing = [
        (i, s.job_id)
        for i, s in slots
        if isinstance(s, Running) and s.taken < settings.max_chain and settings.max_jobs is None
    ]
    may_ask = [i for i, slot in slots if isinstance(slot, Running | Ending)]
    ending = [i for i, slot in slots if isinstance(slot, Ending)]
    busy = [i for i, slot in slots if not isinstance(slot, Free)]
    match kind:
        case "lease" if asking:
            return JobLeased(asking[pick % len(asking)], f"job-{serial}")
        case "settle" if asking:  # a job the kernel settled without running it
            return JobFinished(asking[pick % len(asking)], f"settled-{serial}", OUTCOMES[pick % 3])
        case "ask" if may_ask:
            return NextJobWanted(may_ask[pick % len(may_ask)])
        case "finish" if running:
            slot, job_id = running[pick % len(running)]
            queued = pick % 2 == 0  # whether its transaction left jobs queued
            return JobFinished(slot, job_id, OUTCOMES[pick % len(OUTCOMES)], queued=queued)
        case "end" if asking or ending:
            ended = asking + ending
            return DequeueEnded(ended[pick % len(ended)])
        case "fail" if busy:
            return DequeueEnded(busy[pick % len(busy)], failed=True)
        case "tick" if state.tick_running:
            return TickDone(found_work=pick % 2 == 0)
        case "notify":
            return JobsAvailable()
        case "notify-local":
            return JobsAvailable(local=True)
        case "stop":
            return StopRequested()
        case "force":
            return StopRequested(force=True)
        case "stray":  # the late finish of a job the worker gave up
            return JobFinished(pick % 3, f"gone-{serial}", "skipped")
        case "stray-ask":  # ... or its finish transaction asking
            return NextJobWanted(pick % 3)
        case "stray-lease" if pick % 3 not in asking:  # ... or a late lease
            return JobLeased(pick % 3, f"job-{serial}")
        case "group-lease" if growing:  # the next job of a group starts
            slot, job_id = growing[pick % len(growing)]
            return JobLeased(slot, f"job-{serial}", after=job_id)
        case "group-finish" if grouped:  # an earlier job of a group, once the group commits
            slot, earlier = grouped[pick % len(grouped)]
            return JobFinished(slot, earlier[pick % len(earlier)], OUTCOMES[pick % 3])
        case "group-settle" if growing:  # a job of a group settled without running
            slot, _ = growing[pick % len(growing)]
            return JobFinished(slot, f"settled-{serial}", OUTCOMES[pick % 3], ran=False)
    return Wakeup()


@settings(max_examples=400, deadline=None)
@given(
    histories(),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=1, max_value=4),
    st.one_of(st.none(), st.integers(min_value=1, max_value=6)),
    st.booleans(),
)
def test_every_history_keeps_the_worker_s_promises(
    history: list[tuple[int, str, int]],
    concurrency: int,
    max_chain: int,
    max_jobs: int | None,
    bounded: bool,
) -> None:
    state = initial_state(
        Settings(
            concurrency=concurrency,
            orchestration_interval=None if bounded else timedelta(seconds=1),
            job_poll_interval=200 * MS,
            lease_renew_interval=timedelta(seconds=5),
            drain_timeout=timedelta(seconds=10),
            max_chain=max_chain,
            max_jobs=max_jobs,
            stop_when_idle=bounded,
        )
    )
    now = T0
    state, _ = step(state, now, Started())
    stops = 0
    held: set[str] = set()  # jobs leased to the worker that it has neither finished nor released
    taken = dict.fromkeys(range(concurrency), 0)  # jobs each slot's current dequeue took
    finished = 0  # jobs the worker saw end
    for serial, (delta_ms, kind, pick) in enumerate(history):
        before = state
        now += delta_ms * MS
        happened = _happening(state, kind, pick, serial)
        state, actions = step(state, now, happened)
        released = [action.job_id for action in actions if isinstance(action, ReleaseLease)]
        index = getattr(happened, "slot", None)
        slot_before = before.slots[index] if index is not None and index < concurrency else None
        tracking = before.phase in ("running", "draining")
        match happened:
            case JobLeased(slot=slot, job_id=job_id, after=previous) if (
                tracking and isinstance(slot_before, Running) and previous == slot_before.job_id
            ):
                # The next job of a group: the slot now runs (and renews) it; the one
                # before ran, and waits for the group's commit.
                held.discard(previous)
                held.add(job_id)
                taken[slot] += 1
                if state.phase != "stopped":
                    assert state.slots[slot] == Running(
                        job_id,
                        now,
                        taken[slot],
                        slot_before.chains,
                        (*slot_before.earlier, previous),
                    )
            case JobLeased(slot=slot, job_id=job_id):
                if isinstance(slot_before, Dequeuing) and tracking:
                    # A job the slot asked for runs, even if a stop came since it asked.
                    held.add(job_id)
                    taken[slot] += 1
                    if state.phase != "stopped":
                        assert state.slots[slot] == Running(job_id, now, taken[slot])
                else:  # a lease the worker did not ask for goes straight back (with,
                    # if the drain deadline passes at this very step, the jobs still held)
                    assert job_id in released
                    assert set(released) - {job_id} <= held
            case JobFinished(slot=slot, job_id=job_id) if tracking:
                if isinstance(slot_before, Running) and slot_before.job_id == job_id:
                    held.discard(job_id)
                    finished += 1
                    if state.phase != "stopped":  # it asks on only if it was allowed to
                        after = state.slots[slot]
                        assert after == (Dequeuing if slot_before.chains else Ending)(taken[slot])
                elif isinstance(slot_before, Running) and job_id in slot_before.earlier:
                    finished += 1  # an earlier job of the slot's group
                    if state.phase != "stopped":
                        assert job_id not in state.slots[slot].earlier  # type: ignore[union-attr]
                elif isinstance(slot_before, Running) and not happened.ran:
                    taken[slot] += 1  # a job of the group settled without running
                    finished += 1
                elif isinstance(slot_before, Dequeuing) or (
                    isinstance(slot_before, Ending) and not happened.ran
                ):
                    taken[slot] += 1
                    finished += 1
            case NextJobWanted(slot=slot) if isinstance(slot_before, Running):
                # Answering changes only whether the slot goes on: the group it runs stays.
                after_ask = state.slots[slot]
                if isinstance(after_ask, Running):
                    assert after_ask.earlier == slot_before.earlier
                    assert after_ask.job_id == slot_before.job_id
            case DequeueEnded(slot=slot) if tracking and slot_before not in (None, Free()):
                if isinstance(slot_before, Running):
                    held.discard(slot_before.job_id)
                    finished += 1
                asks = [a for a in actions if isinstance(a, DequeueJob) and a.slot == slot]
                assert state.slots[slot] == Free() or asks
        # Leases are released at the drain deadline, each once, and only if held (or
        # leased just now, unasked); after that the worker holds nothing.
        assert len(released) == len(set(released))
        assert set(released) <= held | {getattr(happened, "job_id", None)}
        if set(released) & held:
            assert state.phase == "stopped"
        held -= set(released)
        for action in actions:
            if isinstance(action, LeaseNext):
                # A next job only when the kernel asks, never after a stop, and never
                # past the chain's limit.
                assert happened == NextJobWanted(action.slot)
                assert not before.stop_requested
                assert taken[action.slot] < max_chain
            if isinstance(action, DequeueJob):
                # Never prefetch: only a free slot asks, and never after a stop.
                assert not before.stop_requested
                freed_now = isinstance(happened, DequeueEnded) and happened.slot == action.slot
                assert isinstance(before.slots[action.slot], Free) or freed_now
                assert state.slots[action.slot] == Dequeuing()
                assert action.max_jobs == max_chain
                assert not action.claim or not bounded  # only hosts that tick claim
                taken[action.slot] = 0
            if isinstance(action, RunTick):
                # One tick at a time, and none after a stop.
                assert not before.stop_requested
                assert not before.tick_running or isinstance(happened, TickDone)
        if before.stop_requested:
            # A stop never leads to a new lease: a slot waits for a job after a stop
            # only if it did before, or if its running job's finish was allowed to
            # lease the next one before the stop.
            for was, now_is in zip(before.slots, state.slots, strict=True):
                if isinstance(now_is, Dequeuing):
                    assert isinstance(was, Dequeuing) or (isinstance(was, Running) and was.chains)
        stops += sum(1 for action in actions if isinstance(action, Stop))
        assert state.busy_slots <= concurrency
        # The worker renews, and at a deadline releases, exactly the jobs it holds, and
        # no lease is left overdue.
        assert set(state.running_jobs) == held
        assert len(set(state.running_jobs)) == len(state.running_jobs)
        for running in state.slots:
            if isinstance(running, Running):
                assert now < running.renewed_at + state.settings.lease_renew_interval
        assert all(n <= max_chain for n in taken.values())
        for index, busy in enumerate(state.slots):
            if not isinstance(busy, Free):
                assert busy.taken == taken[index]
        if max_jobs is not None:
            assert state.jobs_taken <= max_jobs
        counters = state.counters
        assert counters.jobs_processed == finished
        assert counters.jobs_failed <= counters.jobs_processed
        if state.phase == "stopped":
            assert all(isinstance(slot, Free) for slot in state.slots)
            assert not held
        wake = next_wakeup(state)
        assert wake is None or wake > now, "a due deadline must be acted on in the same step"
    assert stops <= 1
