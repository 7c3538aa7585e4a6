"""``WorkerHost(..., purge_after=...)``: the orchestration tick purges finished runs
(SPEC §16 "Retention"), off by default, at most once a minute of the kernel's clock.

The tick's purge comes after its outbox flush, so a run's last events are
published (and the run may go) in the same tick. Here the clock is a
``FakeClock``: the tests move it, and call the host's tick directly, or let a
real host's thread tick while the clock stands still.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from adapters import create_kernel
from adapters.hosts import WorkerHost, tick
from adapters.hosts.logs import HostLog
from adapters.hosts.tick import Orchestrator
from adapters.memory import InMemoryStore
from kernel import Kernel, RunClaimPending, RunCreate
from testing import FakeClock
from tests.harness import T0
from tests.hosts.waiting import wait_for
from tests.workflows import Calls, add, pipeline

HOUR = timedelta(hours=1)
MS = timedelta(milliseconds=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def kernel(store: InMemoryStore, clock: FakeClock) -> Kernel:
    return create_kernel(pipeline("adds", add(Calls())), store=store, clock=clock)


def orchestrator(
    kernel: Kernel, store: InMemoryStore, purge_after: timedelta | None
) -> Orchestrator:
    return Orchestrator(
        kernel,
        store,
        worker_id="w1",
        stale_lease_threshold=timedelta(seconds=60),
        max_claims=10,
        log=HostLog("w1"),
        purge_after=purge_after,
    )


def run_to_end(kernel: Kernel) -> str:
    """A run of ``adds`` run to its end now (its last events still in the outbox)."""
    run_id = kernel.dispatch(RunCreate(workflow_id="adds", input={"value": 1})).workflow_run_id
    kernel.dispatch(RunClaimPending(worker_id="w1"))  # not a tick: only the tests tick
    kernel.execute_jobs("w1")
    return run_id


def test_without_purge_after_no_run_is_ever_purged(
    kernel: Kernel, store: InMemoryStore, clock: FakeClock
) -> None:
    host = orchestrator(kernel, store, None)
    run_id = run_to_end(kernel)
    clock.advance(timedelta(days=3650))
    report = host.tick(sweep=True)
    assert report.purged == 0 and report.ok
    assert store.get_run(run_id) is not None


def test_a_tick_purges_runs_finished_longer_ago_than_purge_after(
    kernel: Kernel, store: InMemoryStore, clock: FakeClock
) -> None:
    """The run's last events are published by the tick's flush, then it goes."""
    host = orchestrator(kernel, store, HOUR)
    old = run_to_end(kernel)
    clock.advance(2 * HOUR)
    young = run_to_end(kernel)
    clock.advance(30 * MS)
    report = host.tick(sweep=False)
    assert report.purged == 1 and report.ok
    assert store.get_run(old) is None
    assert store.get_outbox(old) == []
    assert store.get_run(young) is not None


def test_the_purge_comes_at_most_once_a_minute(
    kernel: Kernel, store: InMemoryStore, clock: FakeClock
) -> None:
    """A run that becomes due 30 s after a purge waits for the next one, a minute after
    the last."""
    host = orchestrator(kernel, store, HOUR)
    first = run_to_end(kernel)
    clock.advance(timedelta(seconds=30))
    second = run_to_end(kernel)
    clock.advance(HOUR - timedelta(seconds=20))  # first: 1 h 10 s old; second: 20 s short

    assert host.tick(sweep=False).purged == 1
    assert store.get_run(first) is None
    clock.advance(timedelta(seconds=30))  # second is due now, but the purge is not
    assert host.tick(sweep=False).purged == 0
    assert store.get_run(second) is not None
    clock.advance(timedelta(seconds=30))
    assert host.tick(sweep=False).purged == 1
    assert store.get_run(second) is None


def test_a_full_batch_goes_again_at_the_next_tick(
    kernel: Kernel, store: InMemoryStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tick, "PURGE_BATCH", 2)
    host = orchestrator(kernel, store, HOUR)
    runs = [run_to_end(kernel) for _ in range(3)]
    clock.advance(2 * HOUR)
    assert [host.tick(sweep=False).purged for _ in range(3)] == [2, 1, 0]
    assert [store.get_run(run_id) for run_id in runs] == [None, None, None]


def test_purge_after_must_be_a_positive_duration(kernel: Kernel, store: InMemoryStore) -> None:
    for bad in (timedelta(0), -HOUR, 3600):
        with pytest.raises(ValueError, match=r"purge_after: expected a timedelta > 0 or None"):
            WorkerHost(kernel, store, worker_id="w", purge_after=bad)  # type: ignore[arg-type]


def done(store: InMemoryStore, run_id: str) -> bool:
    """Whether the run finished and its events are all published."""
    run = store.get_run(run_id)
    published = all(event.published_at for event in store.get_outbox(run_id))
    return run is not None and run.completed_at is not None and published


@pytest.fixture
def host_of(kernel: Kernel, store: InMemoryStore) -> Iterator[WorkerHost]:
    host = WorkerHost(
        kernel,
        store,
        worker_id="w1",
        orchestration_interval=20 * MS,
        job_poll_interval=10 * MS,
        drain_timeout=timedelta(seconds=5),
        purge_after=HOUR,
    )
    yield host
    if host.stats().phase != "stopped":
        host.stop(force=True)


def test_a_running_worker_purges_what_is_due_and_keeps_the_rest(
    host_of: WorkerHost, kernel: Kernel, store: InMemoryStore, clock: FakeClock
) -> None:
    """A real host (threads, its own ticks, timed by the kernel's clock, which the test
    moves a second after each of the host's ticks): the runs it finished are kept
    while they are young, and go once they are older than ``purge_after``."""
    host_of.start()
    run_ids = [
        kernel.dispatch(RunCreate(workflow_id="adds", input={"value": i})).workflow_run_id
        for i in range(3)
    ]

    ticked = [host_of.stats().ticks]
    moved_at = [time.monotonic()]

    def after_a_second(check: Callable[[], bool]) -> Callable[[], bool]:
        def look() -> bool:
            # A second of kernel time per tick the host made, so a host slowed down by
            # a busy machine sees the same clock as a fast one. The host times its ticks
            # by the kernel's clock too: one that has not ticked for a fifth of a second
            # is waiting for that clock to move (its first tick may have come before the
            # runs were created), so it moves then as well.
            ticks = host_of.stats().ticks
            if ticks > ticked[0] or time.monotonic() - moved_at[0] > 0.2:
                ticked[0] = ticks
                moved_at[0] = time.monotonic()
                clock.advance(timedelta(seconds=1))
            return check()

        return look

    wait_for(
        "the runs to finish",
        after_a_second(lambda: all(done(store, run_id) for run_id in run_ids)),
        timeout=60,
    )
    finished_at = clock.now()
    assert all(store.get_run(run_id) is not None for run_id in run_ids)
    clock.advance(HOUR - timedelta(seconds=5))
    wait_for(
        "the purge",
        after_a_second(lambda: all(store.get_run(r) is None for r in run_ids)),
        timeout=60,
    )
    assert clock.now() - finished_at <= HOUR + timedelta(seconds=5) + tick.PURGE_EVERY
    host_of.stop()
    assert host_of.stats().tick_errors == 0
