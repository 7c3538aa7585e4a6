"""``create_test_kernel``: a kernel on in-memory adapters with a fake clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, overload

from typing_extensions import TypeVar

from adapters.blobs import MemoryBlobStore
from adapters.blobs_store import with_blobs
from adapters.clocks import system_zone
from adapters.memory import InMemoryStore
from adapters.runner import DefaultStageRunner
from kernel.ai.config import AIConfig
from kernel.commands import (
    BatchCancelPending,
    Command,
    OutboxFlush,
    RunClaimPending,
    RunTransition,
    StagePollSuspended,
)
from kernel.decisions.run_signal import waiting_for
from kernel.dispatch import Kernel
from kernel.limits import freed_by_time_at
from kernel.plugins import Plugin, PluginRunner
from kernel.ports import BatchProvider, BlobStore, Clock, EventSink, IdGenerator, Store
from kernel.records import Job
from kernel.status import JobStatus, Status
from kernel.workflows import Registry, Workflow
from testing.clock import FakeClock
from testing.ids import SequentialIds
from testing.sinks import CollectingEventSink

R = TypeVar("R")
# Defaults (PEP 696) keep a bare ``TestKernel`` annotation meaning the usual kit.
ClockT = TypeVar("ClockT", bound=Clock, default=FakeClock)
SinkT = TypeVar("SinkT", bound=EventSink, default=CollectingEventSink)

WORKER_ID = "test-worker"


class TestKernel(Generic[ClockT, SinkT]):
    """A kernel plus the adapters it was built with, and a driver for tests.

    ``clock`` and ``sink`` keep their concrete types (``FakeClock`` and
    ``CollectingEventSink`` by default), so ``tk.clock.advance(...)`` and
    ``tk.sink.events`` type-check.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        kernel: Kernel,
        store: Store,
        clock: ClockT,
        sink: SinkT,
        blobs: BlobStore | None = None,
    ) -> None:
        self.kernel = kernel
        self.store = store
        self.clock = clock
        self.sink = sink
        self.blobs = blobs
        """Where values over ``inline_limit`` go (``None``: every value inline)."""

    def dispatch(self, cmd: Command[R]) -> R:
        """Dispatch one command (``kernel.dispatch``)."""
        return self.kernel.dispatch(cmd)

    def run_until_idle(self, max_rounds: int = 1000) -> int:
        """Claim, execute, poll, transition, cancel provider batches (with
        ``batch_providers``) and flush until nothing is left to do.

        When only waiting work remains (a retry backoff, a suspended stage, or a
        job held by its stage's rate limit) and the clock is a :class:`FakeClock`,
        it jumps to the next due time; it returns when the only queued jobs left are
        held by a ``max_running`` limit that no work of its own will free;
        it does not jump to a signal stage's timeout, and it does not tick
        schedules (dispatch ``ScheduleTick()`` for that).
        Returns the number of jobs executed.

        Raises:
            RuntimeError: still busy after ``max_rounds`` rounds.
        """
        executed = 0
        for _ in range(max_rounds):
            progressed = bool(
                self.dispatch(RunClaimPending(worker_id=WORKER_ID, max_claims=100)).claimed
            )
            while batch := self.kernel.execute_jobs(WORKER_ID, max_jobs=1000):
                executed += len(batch)
                progressed = True
            polled = self.dispatch(StagePollSuspended(max_checks=100))
            for run_id in polled.resumed_workflow_run_ids:
                self.dispatch(RunTransition(workflow_run_id=run_id))
            progressed = progressed or polled.checked > 0
            if self.kernel.batch_providers:
                # Like a host's tick: a failed provider cancel waits for the next round.
                self.dispatch(BatchCancelPending())
            self._flush()
            if progressed:
                continue
            wake = self._next_due()
            if wake is None or not isinstance(self.clock, FakeClock):
                return executed
            self.clock.set(max(wake, self.clock.now()))
        raise RuntimeError(f"run_until_idle: still busy after {max_rounds} rounds")

    def _flush(self) -> None:
        # Failed deliveries are retried at once, until each event is published or
        # dead-lettered; the sink's max_retries bounds the rounds.
        for _ in range(100):
            flushed = self.dispatch(OutboxFlush(max_events=1000))
            if not flushed.published and not flushed.failed:
                return

    def _next_due(self) -> datetime | None:
        times: list[datetime] = []
        now = self.clock.now()
        held: list[Job] = []
        # Runs of workflow versions this kernel lacks are a worker's that has them
        # (SPEC §16.1): not work left for this one.
        known = self.kernel.registry.workflow_versions()
        for status in (Status.RUNNING, Status.SUSPENDED):
            for run in self.store.list_runs(status=status, limit=100_000):
                if (run.workflow_id, run.workflow_version) not in known:
                    continue
                for job in self.store.get_jobs(run.id):
                    if job.status != JobStatus.QUEUED:
                        continue
                    if job.available_at > now:
                        times.append(job.available_at)
                    else:
                        held.append(job)  # due but not leased: held by a limit (SPEC §15)
                # A signal's timeout is not work left: waiting for the outside world
                # is idle (SPEC §16.1); the test moves the clock itself.
                times += [
                    stage.next_poll_at
                    for stage in self.store.get_stages(run.id)
                    if stage.status == Status.SUSPENDED
                    and stage.next_poll_at is not None
                    and waiting_for(stage) is None
                ]
        if held:
            # A rate frees its jobs as time passes; a full max_running only as its
            # leased jobs end, which no work of this kernel's does.
            every = [
                job
                for run in self.store.list_runs(limit=100_000)
                for job in self.store.get_jobs(run.id)
            ]
            for job in held:
                at = freed_by_time_at(job, every, now)
                if at is not None:
                    times.append(at)
        return min(times) if times else None


# Without plugins (``plugins`` left at ``()``) the sink is a CollectingEventSink or the
# given one; with plugins it is a PluginRunner. ``plugins=()`` also fits the later
# ``Sequence[Plugin]`` overloads, but the first overload that fits wins, as at run time.
@overload
def create_test_kernel(  # type: ignore[overload-overlap]
    *workflows: Workflow[Any, Any],
    store: Store | None = None,
    clock: None = None,
    sink: None = None,
    plugins: tuple[()] = (),
    ids: IdGenerator | None = None,
    ai: AIConfig | None = None,
    batch_providers: Sequence[BatchProvider] = (),
    blobs: BlobStore | None = None,
    inline_limit: int | None = None,
) -> TestKernel[FakeClock, CollectingEventSink]: ...


@overload
def create_test_kernel(  # type: ignore[overload-overlap]
    *workflows: Workflow[Any, Any],
    store: Store | None = None,
    clock: ClockT,
    sink: None = None,
    plugins: tuple[()] = (),
    ids: IdGenerator | None = None,
    ai: AIConfig | None = None,
    batch_providers: Sequence[BatchProvider] = (),
    blobs: BlobStore | None = None,
    inline_limit: int | None = None,
) -> TestKernel[ClockT, CollectingEventSink]: ...


@overload
def create_test_kernel(
    *workflows: Workflow[Any, Any],
    store: Store | None = None,
    clock: None = None,
    sink: SinkT,
    plugins: tuple[()] = (),
    ids: IdGenerator | None = None,
    ai: AIConfig | None = None,
    batch_providers: Sequence[BatchProvider] = (),
    blobs: BlobStore | None = None,
    inline_limit: int | None = None,
) -> TestKernel[FakeClock, SinkT]: ...


@overload
def create_test_kernel(
    *workflows: Workflow[Any, Any],
    store: Store | None = None,
    clock: ClockT,
    sink: SinkT,
    plugins: tuple[()] = (),
    ids: IdGenerator | None = None,
    ai: AIConfig | None = None,
    batch_providers: Sequence[BatchProvider] = (),
    blobs: BlobStore | None = None,
    inline_limit: int | None = None,
) -> TestKernel[ClockT, SinkT]: ...


@overload
def create_test_kernel(
    *workflows: Workflow[Any, Any],
    store: Store | None = None,
    clock: None = None,
    sink: None = None,
    plugins: Sequence[Plugin],
    ids: IdGenerator | None = None,
    ai: AIConfig | None = None,
    batch_providers: Sequence[BatchProvider] = (),
    blobs: BlobStore | None = None,
    inline_limit: int | None = None,
) -> TestKernel[FakeClock, PluginRunner]: ...


@overload
def create_test_kernel(
    *workflows: Workflow[Any, Any],
    store: Store | None = None,
    clock: ClockT,
    sink: None = None,
    plugins: Sequence[Plugin],
    ids: IdGenerator | None = None,
    ai: AIConfig | None = None,
    batch_providers: Sequence[BatchProvider] = (),
    blobs: BlobStore | None = None,
    inline_limit: int | None = None,
) -> TestKernel[ClockT, PluginRunner]: ...


def create_test_kernel(
    *workflows: Workflow[Any, Any],
    store: Store | None = None,
    clock: Clock | None = None,
    sink: EventSink | None = None,
    plugins: Sequence[Plugin] = (),
    ids: IdGenerator | None = None,
    ai: AIConfig | None = None,
    batch_providers: Sequence[BatchProvider] = (),
    blobs: BlobStore | None = None,
    inline_limit: int | None = None,
) -> TestKernel[Any, Any]:
    """A kernel on an ``InMemoryStore``, a ``FakeClock``, ``SequentialIds`` and a
    ``CollectingEventSink`` (each replaceable). Two test kernels sharing one
    ``store`` need ``ids`` that do not collide (``SequentialIds(prefix="b")``).
    Schedules' time zones come from the system's time-zone database.

    With ``plugins``, events go to a ``PluginRunner`` over them instead, as
    with ``adapters.create_kernel(..., plugins=...)``, and ``tk.sink`` is that
    runner (typed so). Any ``plugins`` but the default ``()`` makes the runner,
    even an empty list, so the type mypy infers always holds. Pass ``plugins``
    or ``sink``, not both. ``ai`` and ``batch_providers`` are passed to the
    kernel as by ``adapters.create_kernel`` (``testing.FakeAIProvider`` calls no
    one; see docs/ai.md).

    With ``blobs`` or ``inline_limit``, values whose JSON exceeds ``inline_limit``
    bytes (default 256 KiB) are kept in ``blobs`` (default: a ``MemoryBlobStore``
    on the test clock) and ``tk.store`` loads them, as with
    ``adapters.create_kernel(..., blobs=...)``; ``tk.blobs`` is that blob store.
    Without either, every value stays inline.

    Raises:
        TypeError: both ``sink`` and ``plugins`` were given.
        ValueError: ``inline_limit`` is not a positive int.
    """
    with_plugins = plugins != ()
    if sink is not None and with_plugins:
        raise TypeError(
            "create_test_kernel: pass sink= or plugins=, not both "
            "(with plugins, the sink is a PluginRunner over them)"
        )
    store = store if store is not None else InMemoryStore()
    clock = clock if clock is not None else FakeClock()
    if blobs is None and inline_limit is not None:
        blobs = MemoryBlobStore(clock)
    store = with_blobs(store, blobs, inline_limit)
    if sink is None:
        sink = PluginRunner(list(plugins)) if with_plugins else CollectingEventSink()
    kernel = Kernel(
        registry=Registry(workflows),
        store=store,
        clock=clock,
        ids=ids if ids is not None else SequentialIds(),
        sink=sink,
        runner=DefaultStageRunner(),
        zone_of=system_zone,
        ai=ai,
        batch_providers=batch_providers,
    )
    return TestKernel(kernel, store, clock, sink, blobs)
