"""``WorkerHost`` with real threads on the in-memory store (SPEC §8, §5.8, §10.1).

Intervals are tens of milliseconds and every wait is bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters import create_kernel
from adapters.demo import SAMPLE_DOCUMENTS, document_pipeline
from adapters.hosts import WorkerHost
from adapters.hosts.worker import QUICK_TURN_WAIT, WorkerStats
from adapters.memory import InMemoryStore, MemoryTransaction
from adapters.sqlite import SqliteStore
from kernel import (
    JobStatus,
    Kernel,
    RunClaimPending,
    RunCreate,
    RunRerunFrom,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from kernel.commands import Command
from kernel.ports import Store
from testing import FakeClock
from tests.hosts.apps import NoConfig, finish_markers, slow_workflow, start_markers
from tests.hosts.waiting import wait_for

MS = timedelta(milliseconds=1)


def make_host(kernel: Kernel, store: Store, **overrides: Any) -> WorkerHost:
    settings: dict[str, Any] = {
        "worker_id": "w1",
        "concurrency": 4,
        "orchestration_interval": 20 * MS,
        "job_poll_interval": 10 * MS,
        "stale_lease_threshold": timedelta(seconds=5),
        "lease_renew_interval": 50 * MS,
        "drain_timeout": timedelta(seconds=5),
        **overrides,
    }
    return WorkerHost(kernel, store, **settings)


NOTHING_FOR_30_S: dict[str, Any] = {
    "job_poll_interval": timedelta(seconds=30),
    "orchestration_interval": timedelta(seconds=30),
}
"""Host settings under which neither a tick nor a poll comes during a test: only a
wake-up can start new work."""


def quiet_host(
    kernel: Kernel, store: Store, hosts: list[WorkerHost], **overrides: Any
) -> WorkerHost:
    """A host under ``NOTHING_FOR_30_S``, started and past its first tick: from now on
    only a wake-up starts new work."""
    host = make_host(kernel, store, **NOTHING_FOR_30_S, **overrides)
    hosts.append(host)
    host.start()
    wait_for("the first tick", lambda: host.stats().ticks == 1)
    return host


@pytest.fixture
def hosts() -> Iterator[list[WorkerHost]]:
    """Hosts a test started; stopped (fast) at the end even if the test failed."""
    started: list[WorkerHost] = []
    yield started
    for host in started:
        if host.stats().phase != "stopped":
            host.stop(force=True)


def create_slow_run(kernel: Kernel, marker_dir: Path, seconds: float) -> str:
    return kernel.dispatch(
        RunCreate(
            workflow_id=slow_workflow.id,
            input={"marker_dir": str(marker_dir), "seconds": seconds},
        )
    ).workflow_run_id


def status_of(store: Store, run_id: str) -> Status:
    run = store.get_run(run_id)
    assert run is not None
    return run.status


def queue_slow_runs(kernel: Kernel, marker_dir: Path, runs: int, seconds: float = 0) -> list[str]:
    """Create ``runs`` runs of ``slow_workflow`` and claim them: their first jobs are queued."""
    run_ids = [create_slow_run(kernel, marker_dir, seconds) for _ in range(runs)]
    kernel.dispatch(RunClaimPending(worker_id="setup"))
    return run_ids


def drain(host: WorkerHost, store: Store, run_ids: list[str]) -> WorkerStats:
    """Start ``host``, wait until every run completed, stop it; its stats."""
    host.start()
    wait_for(
        "every run to complete",
        lambda: all(status_of(store, run_id) == Status.COMPLETED for run_id in run_ids),
    )
    return host.stop()


def stage(store: InMemoryStore, run_id: str, stage_id: str) -> Any:
    return next(s for s in store.get_stages(run_id) if s.stage_id == stage_id)


def test_a_worker_runs_the_document_pipeline_to_the_end(hosts: list[WorkerHost]) -> None:
    store = InMemoryStore()
    kernel = create_kernel(document_pipeline, store=store)
    run_ids = [
        kernel.dispatch(
            RunCreate(workflow_id=document_pipeline.id, input=attrs.asdict(document))
        ).workflow_run_id
        for document in SAMPLE_DOCUMENTS
    ]
    host = make_host(kernel, store)
    hosts.append(host)
    host.start()
    wait_for(
        "every run to complete",
        lambda: all(status_of(store, run_id) == Status.COMPLETED for run_id in run_ids),
    )
    stats = host.stop()
    assert stats.phase == "stopped"
    assert stats.jobs_processed == 4 * len(run_ids)
    assert stats.jobs_failed == 0
    assert stats.ticks >= 1
    assert stats.uptime > timedelta(0)
    assert all(event.published_at is not None for event in store.get_outbox())


def test_a_long_stage_on_a_live_worker_is_not_reaped_and_runs_once(
    tmp_path: Path, hosts: list[WorkerHost]
) -> None:
    """SPEC §5.8: the host renews the lease while the stage runs (4x the stale threshold)."""
    store = InMemoryStore()
    kernel = create_kernel(slow_workflow, store=store)
    run_id = create_slow_run(kernel, tmp_path, seconds=0.8)
    host = make_host(kernel, store, stale_lease_threshold=200 * MS, lease_renew_interval=40 * MS)
    hosts.append(host)
    host.start()
    wait_for("the run to complete", lambda: status_of(store, run_id) == Status.COMPLETED)
    stats = host.stop()
    assert len(start_markers(tmp_path)) == 1
    assert all(job.reap_count == 0 for job in store.get_jobs(run_id))
    assert stats.leases_renewed >= 5
    started = [e for e in store.get_outbox(run_id) if e.event_type == "stage:started"]
    assert Counter(e.payload["stage_id"] for e in started) == {"prepare": 1, "slow": 1, "finish": 1}


def test_the_lease_of_a_worker_that_died_is_reaped_and_its_stage_runs_again(
    tmp_path: Path, hosts: list[WorkerHost]
) -> None:
    """A crash is dropping a worker's state: its lease is left behind, and a live worker's
    tick takes it back once it is stale."""
    store = InMemoryStore()
    kernel = create_kernel(slow_workflow, store=store)
    run_id = create_slow_run(kernel, tmp_path, seconds=0.01)
    kernel.dispatch(RunClaimPending(worker_id="dead"))

    def crash(job: object) -> None:
        raise SystemExit("the worker died before its user code ran")

    with pytest.raises(SystemExit):
        kernel.execute_next_job("dead", on_start=crash)  # 'prepare' is left leased
    host = make_host(kernel, store, stale_lease_threshold=100 * MS, lease_renew_interval=20 * MS)
    hosts.append(host)
    host.start()
    wait_for("the run to complete", lambda: status_of(store, run_id) == Status.COMPLETED)
    host.stop()
    prepare = next(job for job in store.get_jobs(run_id) if job.stage_id == "prepare")
    assert prepare.reap_count == 1
    assert prepare.status == JobStatus.COMPLETED
    assert prepare.worker_id == "w1"


def test_stop_lets_the_running_stage_finish_and_runs_no_new_job(
    tmp_path: Path, hosts: list[WorkerHost]
) -> None:
    store = InMemoryStore()
    kernel = create_kernel(slow_workflow, store=store)
    run_id = create_slow_run(kernel, tmp_path, seconds=0.3)
    host = make_host(kernel, store)
    hosts.append(host)
    host.start()
    wait_for("the slow stage to start", lambda: start_markers(tmp_path))
    stats = host.stop()
    assert stats.phase == "stopped"
    assert stage(store, run_id, "slow").status == Status.COMPLETED
    assert (stats.jobs_processed, stats.jobs_failed) == (2, 0)  # prepare and slow, one chain
    # The slow stage's finish queued the next job, but a stopping worker's finish
    # leases nothing: the job stays queued, never started, and nothing was released.
    assert stats.leases_released == 0
    finish = next(job for job in store.get_jobs(run_id) if job.stage_id == "finish")
    assert (finish.status, finish.worker_id, finish.attempt) == (JobStatus.QUEUED, None, 0)
    assert stage(store, run_id, "finish").status == Status.PENDING
    started = [e for e in store.get_outbox(run_id) if e.event_type == "stage:started"]
    assert [e.payload["stage_id"] for e in started] == ["prepare", "slow"]
    assert all(job.status != JobStatus.LEASED for job in store.get_jobs(run_id))
    assert all(event.published_at is not None for event in store.get_outbox())


def test_a_stage_still_running_at_the_drain_timeout_goes_back_to_the_queue(
    tmp_path: Path, hosts: list[WorkerHost]
) -> None:
    store = InMemoryStore()
    kernel = create_kernel(slow_workflow, store=store)
    run_id = create_slow_run(kernel, tmp_path, seconds=0.6)
    host = make_host(kernel, store, drain_timeout=50 * MS)
    hosts.append(host)
    host.start()
    wait_for("the slow stage to start", lambda: start_markers(tmp_path))
    began = time.monotonic()
    stats = host.stop()
    assert time.monotonic() - began < 0.5  # the drain timeout, not the stage, decided
    assert stats.leases_released == 1
    slow_job = next(job for job in store.get_jobs(run_id) if job.stage_id == "slow")
    assert (slow_job.status, slow_job.worker_id, slow_job.attempt) == (JobStatus.QUEUED, None, 0)
    assert stage(store, run_id, "slow").status == Status.PENDING
    # The abandoned code finishes later; the kernel discards its result.
    wait_for("the abandoned stage code to end", lambda: finish_markers(tmp_path))
    time.sleep(0.05)
    assert stage(store, run_id, "slow").status == Status.PENDING
    # Another worker runs it again, to the end.
    second = make_host(kernel, store, worker_id="w2")
    hosts.append(second)
    second.start()
    wait_for("the run to complete", lambda: status_of(store, run_id) == Status.COMPLETED)
    second.stop()
    assert len(start_markers(tmp_path)) == 2


class SlotCountingStore(InMemoryStore):
    """Counts the write transactions that job slots open (slot threads are named so)."""

    def __init__(self) -> None:
        super().__init__()
        self.slot_transactions = 0
        self._counting = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        if "-slot-" in threading.current_thread().name:
            with self._counting:
                self.slot_transactions += 1
        with super().transaction() as tx:
            yield tx


@pytest.mark.parametrize(("max_chain", "most"), [(50, 1.1), (1, 2.1)])
def test_a_busy_slot_commits_one_write_transaction_per_stage(
    tmp_path: Path, hosts: list[WorkerHost], max_chain: int, most: float
) -> None:
    """Without groups (``max_group=1``), each finish transaction also leases and starts
    the slot's next job (a chain); one job per dequeue (``max_chain=1``) takes two
    write transactions per stage."""
    store = SlotCountingStore()
    kernel = create_kernel(slow_workflow, store=store)
    run_ids = queue_slow_runs(kernel, tmp_path, 10)
    # Idle slots look again only after a second: the count is the busy slot's own.
    host = make_host(
        kernel,
        store,
        concurrency=1,
        max_chain=max_chain,
        max_group=1,
        job_poll_interval=timedelta(seconds=1),
    )
    hosts.append(host)
    stats = drain(host, store, run_ids)
    stages = 3 * len(run_ids)
    assert (stats.jobs_processed, stats.jobs_failed, stats.leases_released) == (stages, 0, 0)
    # Plus the dequeue that found the queue empty (and its poll a second later, at worst).
    assert stages <= store.slot_transactions <= most * stages + 2
    assert len(start_markers(tmp_path)) == len(run_ids)


def test_a_busy_slot_with_quick_stages_commits_them_in_groups(
    tmp_path: Path, hosts: list[WorkerHost]
) -> None:
    """Group commit (the default ``max_group``): quick stages are leased, run and finished
    several per transaction, and every job is still counted once."""
    store = SlotCountingStore()
    kernel = create_kernel(slow_workflow, store=store)
    run_ids = queue_slow_runs(kernel, tmp_path, 20)
    host = make_host(kernel, store, concurrency=1, job_poll_interval=timedelta(seconds=1))
    hosts.append(host)
    stats = drain(host, store, run_ids)
    stages = 3 * len(run_ids)
    assert (stats.jobs_processed, stats.jobs_failed, stats.leases_released) == (stages, 0, 0)
    assert store.slot_transactions <= stages / 2
    assert len(start_markers(tmp_path)) == len(run_ids)


class CountedLock:
    """A lock that counts how often it was taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.taken = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        self.taken += got
        return got

    def release(self) -> None:
        self._lock.release()


def test_slots_with_quick_stages_take_turns(tmp_path: Path, hosts: list[WorkerHost]) -> None:
    """Several slots in one process gain nothing on quick stages (one thread runs at a
    time): one slot at a time takes groups of them, and every job still runs once."""
    store = InMemoryStore()
    kernel = create_kernel(slow_workflow, store=store)
    run_ids = queue_slow_runs(kernel, tmp_path, 60)
    host = make_host(kernel, store, concurrency=3, job_poll_interval=timedelta(seconds=1))
    turns = CountedLock()
    host._quick_slot = turns  # type: ignore[assignment]
    hosts.append(host)
    stats = drain(host, store, run_ids)
    assert (stats.jobs_processed, stats.jobs_failed) == (180, 0)
    assert len(start_markers(tmp_path)) == len(run_ids)
    assert turns.taken >= 1  # a slot that had seen quick stages took its turn


def test_slots_still_overlap_stages_that_wait(tmp_path: Path, hosts: list[WorkerHost]) -> None:
    """Stages that sleep (wait on I/O) make small groups: the slots do not take turns
    then, and run such stages side by side."""
    store = InMemoryStore()
    kernel = create_kernel(slow_workflow, store=store)
    run_ids = queue_slow_runs(kernel, tmp_path, 12, seconds=0.05)
    host = make_host(kernel, store, concurrency=2, job_poll_interval=timedelta(seconds=1))
    hosts.append(host)
    drain(host, store, run_ids)
    # Each marker is named after when it was made: sweep them for the most at once.
    moments = sorted(
        (int(marker.stem.rsplit("-", 1)[1]), 1 if marker.suffix == ".started" else -1)
        for marker in tmp_path.glob("slow-*")
    )
    running = most = 0
    for _, step in moments:
        running += step
        most = max(most, running)
    assert len(moments) == 24 and most == 2


def test_a_slot_waits_its_quick_turn_only_briefly(tmp_path: Path, hosts: list[WorkerHost]) -> None:
    """The slot taking quick groups may hang in a stage: the others wait at most
    ``QUICK_TURN_WAIT`` for their turn, then go ahead on their own."""
    store = InMemoryStore()
    kernel = create_kernel(slow_workflow, store=store)
    host = make_host(kernel, store, concurrency=2, job_poll_interval=timedelta(seconds=1))
    hosts.append(host)
    assert host._quick_slot.acquire(blocking=False)  # a slot stuck with the turn
    try:
        stats = drain(host, store, queue_slow_runs(kernel, tmp_path, 20))
    finally:
        host._quick_slot.release()
    assert stats.jobs_processed == 60
    assert timedelta(milliseconds=100) >= QUICK_TURN_WAIT


def test_each_job_is_counted_as_it_finishes_in_the_middle_of_a_chain(
    tmp_path: Path, hosts: list[WorkerHost]
) -> None:
    store = InMemoryStore()
    kernel = create_kernel(slow_workflow, store=store)
    run_id = create_slow_run(kernel, tmp_path, seconds=0.3)
    host = make_host(kernel, store, concurrency=1)
    hosts.append(host)
    host.start()
    wait_for("the slow stage to start", lambda: start_markers(tmp_path))
    # 'prepare' finished in the chain that now runs 'slow': it is counted already.
    assert host.stats().jobs_processed == 1
    wait_for("the run to complete", lambda: status_of(store, run_id) == Status.COMPLETED)
    wait_for("every job to be counted", lambda: host.stats().jobs_processed == 3)
    host.stop()


class TransactionWatchingStore(InMemoryStore):
    """Records lease renewals made by a thread that has a transaction open."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.local()
        self.renewals = 0
        self.renewals_inside = 0

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        self.open.depth = getattr(self.open, "depth", 0) + 1
        try:
            with super().transaction() as tx:
                yield tx
        finally:
            self.open.depth -= 1

    def renew_lease(self, job_id: str, worker_id: str, now: Any) -> bool:
        self.renewals += 1
        if getattr(self.open, "depth", 0):
            self.renewals_inside += 1
        return super().renew_lease(job_id, worker_id, now)


def test_what_falls_due_while_the_kernel_asks_to_chain_waits_for_its_transaction(
    hosts: list[WorkerHost],
) -> None:
    """The kernel asks whether to chain from inside the finish transaction; a renewal due
    then is made once that transaction has ended (on PostgreSQL, renewing the finishing
    job's own lease from another connection would wait for that transaction for ever).

    Each stage moves the clock past the renewal interval, so a renewal of its lease is
    due exactly when its finish transaction asks."""
    clock = FakeClock()

    @attrs.frozen
    class Item:
        n: int

    def jump(ctx: StageContext[Item, NoConfig]) -> Item:
        clock.advance(timedelta(minutes=2))
        return ctx.input

    workflow = (
        WorkflowBuilder("jump", "Jump", "", input=Item, output=Item)
        .pipe(
            define_stage(
                id="jump", name="Jump", input=Item, output=Item, config=NoConfig, execute=jump
            )
        )
        .build()
    )
    store = TransactionWatchingStore()
    kernel = create_kernel(workflow, store=store, clock=clock)
    run_ids = [
        kernel.dispatch(RunCreate(workflow_id="jump", input={"n": n})).workflow_run_id
        for n in range(10)
    ]
    kernel.dispatch(RunClaimPending(worker_id="setup"))
    host = make_host(
        kernel,
        store,
        concurrency=1,
        orchestration_interval=timedelta(hours=1),
        lease_renew_interval=timedelta(minutes=1),
        stale_lease_threshold=timedelta(hours=1),
    )
    hosts.append(host)
    host.start()
    wait_for(
        "every run to complete",
        lambda: all(status_of(store, run_id) == Status.COMPLETED for run_id in run_ids),
    )
    stats = host.stop()
    assert stats.jobs_processed == len(run_ids)
    assert store.renewals >= len(run_ids) - 1
    assert store.renewals_inside == 0


def test_a_failure_in_a_chain_is_counted_and_the_chain_goes_on(
    hosts: list[WorkerHost], caplog: pytest.LogCaptureFixture
) -> None:
    @attrs.frozen
    class Item:
        n: int

    def odd_fails(ctx: StageContext[Item, NoConfig]) -> Any:
        # A result that does not fit the output type fails for good (no retry).
        return f"odd: {ctx.input.n}" if ctx.input.n % 2 else ctx.input

    workflow = (
        WorkflowBuilder("odd", "Odd", "", input=Item, output=Item)
        .pipe(
            define_stage(
                id="check", name="Check", input=Item, output=Item, config=NoConfig,
                execute=odd_fails,
            )
        )
        .build()
    )  # fmt: skip
    store = InMemoryStore()
    kernel = create_kernel(workflow, store=store)
    for n in range(6):
        kernel.dispatch(RunCreate(workflow_id="odd", input={"n": n}))
    kernel.dispatch(RunClaimPending(worker_id="setup"))
    host = make_host(kernel, store, concurrency=1)
    hosts.append(host)
    with caplog.at_level(logging.INFO, logger="workflow_kernel.hosts"):
        host.start()
        wait_for("every run to end", lambda: all(run.is_terminal for run in store.list_runs()))
        stats = host.stop()
    assert (stats.jobs_processed, stats.jobs_failed) == (6, 3)
    outcomes = Counter(
        r.getMessage().split(":")[0]
        for r in caplog.records
        if r.name == "workflow_kernel.hosts" and r.getMessage().startswith("stage")
    )
    assert outcomes == {"stage check completed": 3, "stage check failed": 3}


def test_run_forever_off_the_main_thread_returns_when_stopped(hosts: list[WorkerHost]) -> None:
    store = InMemoryStore()
    host = make_host(create_kernel(document_pipeline, store=store), store)
    hosts.append(host)
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(host.run_forever()))
    thread.start()
    wait_for("a first tick", lambda: host.stats().ticks >= 1)
    host.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert results[0].phase == "stopped"
    with pytest.raises(RuntimeError, match="already started"):
        host.start()


def test_a_worker_never_runs_more_jobs_than_it_has_slots(hosts: list[WorkerHost]) -> None:
    """SPEC §10.1: no prefetch — at most ``concurrency`` jobs are leased or running."""
    lock = threading.Lock()
    running = [0]
    peak = [0]

    @attrs.frozen
    class Item:
        n: int

    def busy(ctx: StageContext[Item, NoConfig]) -> Item:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.03)
        with lock:
            running[0] -= 1
        return ctx.input

    workflow = (
        WorkflowBuilder("busy", "Busy", "", input=Item, output=Item)
        .pipe(
            define_stage(
                id="busy", name="Busy", input=Item, output=Item, config=NoConfig, execute=busy
            )
        )
        .build()
    )
    store = InMemoryStore()
    kernel = create_kernel(workflow, store=store)
    run_ids = [
        kernel.dispatch(RunCreate(workflow_id="busy", input={"n": n})).workflow_run_id
        for n in range(8)
    ]
    host = make_host(kernel, store, concurrency=2)
    hosts.append(host)
    leased_peak = [0]
    host.start()

    def all_done() -> bool:
        leased = sum(
            1
            for run_id in run_ids
            for job in store.get_jobs(run_id)
            if job.status == JobStatus.LEASED
        )
        leased_peak[0] = max(leased_peak[0], leased)
        return all(status_of(store, run_id) == Status.COMPLETED for run_id in run_ids)

    wait_for("every run to complete", all_done)
    host.stop()
    assert peak[0] == 2
    assert leased_peak[0] <= 2


def test_a_failing_tick_is_logged_and_the_next_tick_runs(
    caplog: pytest.LogCaptureFixture, hosts: list[WorkerHost]
) -> None:
    store = InMemoryStore()
    kernel = create_kernel(document_pipeline, store=store)
    real_dispatch = kernel.dispatch
    failures = [0]

    def flaky_dispatch(cmd: Command[Any]) -> Any:
        if isinstance(cmd, RunClaimPending) and failures[0] == 0:
            failures[0] += 1
            raise RuntimeError("database hiccup")
        return real_dispatch(cmd)

    kernel.dispatch = flaky_dispatch  # type: ignore[method-assign]
    run_id = kernel.dispatch(
        RunCreate(workflow_id=document_pipeline.id, input=attrs.asdict(SAMPLE_DOCUMENTS[0]))
    ).workflow_run_id
    host = make_host(kernel, store)
    hosts.append(host)
    with caplog.at_level(logging.INFO, logger="workflow_kernel.hosts"):
        host.start()
        wait_for("the run to complete", lambda: status_of(store, run_id) == Status.COMPLETED)
        stats = host.stop()
    assert stats.tick_errors == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["tick: claim failed"]
    assert errors[0].exc_info is not None
    # Every host record names the worker, and the run and stage when it is about one.
    host_records = [r for r in caplog.records if r.name == "workflow_kernel.hosts"]
    assert all(getattr(r, "worker_id", None) == "w1" for r in host_records)
    finished = [r for r in host_records if r.getMessage() == "stage merge completed"]
    assert [
        (getattr(r, "workflow_run_id", None), getattr(r, "stage_id", None)) for r in finished
    ] == [(run_id, "merge")]


class NotifyingStore(InMemoryStore):
    """An in-memory store with ``wait_for_jobs``, like PostgreSQL's LISTEN/NOTIFY."""

    def __init__(self) -> None:
        super().__init__()
        self.notified = threading.Event()
        self.waits = 0

    def wait_for_jobs(self, timeout: float) -> bool:
        self.waits += 1
        woke = self.notified.wait(timeout)
        self.notified.clear()
        return woke


def test_a_store_notification_wakes_idle_slots_without_waiting_for_the_poll(
    hosts: list[WorkerHost],
) -> None:
    store = NotifyingStore()
    kernel = create_kernel(document_pipeline, store=store)
    run_id = kernel.dispatch(
        RunCreate(workflow_id=document_pipeline.id, input=attrs.asdict(SAMPLE_DOCUMENTS[0]))
    ).workflow_run_id
    host = make_host(kernel, store, **NOTHING_FOR_30_S)
    hosts.append(host)
    host.start()
    wait_for("the run to complete", lambda: status_of(store, run_id) == Status.COMPLETED)
    wait_for("the slots to go idle", lambda: host.stats().busy_slots == 0)
    # Re-running queues jobs without a tick; only the notification can wake the slots now.
    kernel.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="merge"))
    store.notified.set()
    wait_for(
        "the re-run to complete",
        lambda: status_of(store, run_id) == Status.COMPLETED,
        timeout=5,
    )
    host.stop()
    assert store.waits >= 1


def test_bad_settings_are_refused_with_their_name() -> None:
    store = InMemoryStore()
    kernel = create_kernel(store=store)
    with pytest.raises(ValueError, match=r"lease_renew_interval .* must be shorter"):
        WorkerHost(kernel, store, worker_id="w", lease_renew_interval=timedelta(seconds=60))
    with pytest.raises(ValueError, match="concurrency: expected an int >= 1, got 0"):
        WorkerHost(kernel, store, worker_id="w", concurrency=0)
    with pytest.raises(ValueError, match="worker_id"):
        WorkerHost(kernel, store, worker_id="")
    with pytest.raises(ValueError, match="max_group: expected an int >= 1, got 0"):
        WorkerHost(kernel, store, worker_id="w", max_group=0)


def test_a_run_created_through_the_workers_own_sqlite_store_starts_without_a_tick(
    hosts: list[WorkerHost], tmp_path: Path
) -> None:
    """``SqliteStore`` announces new runs to subscribers in its process: the host
    claims a run created beside it at once, not at its next tick (30 s away here)."""
    store = SqliteStore(tmp_path / "app.db")
    kernel = create_kernel(document_pipeline, store=store)
    host = quiet_host(kernel, store, hosts)
    run_id = kernel.dispatch(
        RunCreate(workflow_id=document_pipeline.id, input=attrs.asdict(SAMPLE_DOCUMENTS[0]))
    ).workflow_run_id
    wait_for("the run to complete", lambda: status_of(store, run_id) == Status.COMPLETED, 5)
    host.stop()
    assert host.stats().ticks == 1  # claimed by the slot the announcement woke, not a tick
    store.close()


def test_the_stages_of_a_parallel_group_run_side_by_side_without_a_poll(
    hosts: list[WorkerHost], tmp_path: Path
) -> None:
    """The finish of the stage before a parallel group queues the group's jobs and leases
    one of them itself; it names the other as left in the queue, so a free slot looks
    for it at once. Each stage of the group waits for the other: they complete only if
    they run side by side, and no poll or tick comes to start the second."""

    @attrs.frozen
    class Item:
        n: int

    together = threading.Barrier(2, timeout=5)

    def first(ctx: StageContext[Item, NoConfig]) -> Item:
        time.sleep(0.2)  # long enough for the other slot to look, find nothing, and idle
        return ctx.input

    def meet(ctx: StageContext[Item, NoConfig]) -> Item:
        together.wait()
        return ctx.input

    def item_stage(stage_id: str, execute: Any) -> Any:
        return define_stage(
            id=stage_id, name=stage_id, input=Item, output=Item, config=NoConfig, execute=execute
        )

    workflow = (
        WorkflowBuilder("meet", "Meet", "", input=Item, output=dict)
        .pipe(item_stage("first", first))
        .parallel([item_stage("left", meet), item_stage("right", meet)])
        .build()
    )
    store = SqliteStore(tmp_path / "app.db")
    kernel = create_kernel(workflow, store=store)
    host = quiet_host(kernel, store, hosts, concurrency=2)
    run_id = kernel.dispatch(RunCreate(workflow_id="meet", input={"n": 1})).workflow_run_id
    wait_for("the run to complete", lambda: status_of(store, run_id) == Status.COMPLETED, 10)
    stats = host.stop()
    assert (stats.ticks, stats.jobs_processed, stats.jobs_failed) == (1, 3, 0)
    store.close()


def test_a_run_created_beside_a_busy_worker_starts_when_its_slot_is_free(
    hosts: list[WorkerHost], tmp_path: Path
) -> None:
    """The announcement of a run created while the only slot runs another finds no idle
    slot: the slot claims the run as soon as it finds the queue empty."""
    store = SqliteStore(tmp_path / "app.db")
    kernel = create_kernel(slow_workflow, store=store)
    host = quiet_host(kernel, store, hosts, concurrency=1)
    first = create_slow_run(kernel, tmp_path, 0.3)
    wait_for("the first run's stage to start", lambda: host.stats().busy_slots == 1)
    second = create_slow_run(kernel, tmp_path, 0.0)
    wait_for("both runs to complete", lambda: status_of(store, second) == Status.COMPLETED, 5)
    assert status_of(store, first) == Status.COMPLETED
    host.stop()
    assert host.stats().ticks == 1
    store.close()
