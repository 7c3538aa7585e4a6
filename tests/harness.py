"""Helpers the tests share: the ``make_tk`` fixture's type, record builders, and
short readers of a store's outbox, stages and jobs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeAlias

from attrs import evolve

from kernel import (
    Event,
    Job,
    JobStatus,
    OutboxEvent,
    RunClaimPending,
    RunCreate,
    Status,
    Workflow,
    WorkflowRun,
    WorkflowStage,
)
from kernel.decisions.context import Env
from kernel.effects import StoreEffect
from kernel.ports import EventSink, Store
from testing import CollectingEventSink, SequentialIds, TestKernel

T0 = datetime(2025, 1, 1, tzinfo=UTC)
"""Where every ``FakeClock`` of the tests starts."""

TK: TypeAlias = "TestKernel[Any, Any]"
"""A test kernel over any clock and sink."""


class MakeKernel(Protocol):
    """The ``make_tk`` fixture: a test kernel over the parametrised store."""

    def __call__(self, *workflows: Workflow[Any, Any], sink: EventSink | None = None) -> TK: ...


StoreFactory = Callable[[Any], Store]


class RefusingSink(CollectingEventSink):
    """A sink that refuses events of the given types: the first ``failures`` deliveries
    of each such event (``None``: every one), then accepts them."""

    def __init__(
        self, refuse: Iterable[str], failures: int | None = None, max_retries: int = 3
    ) -> None:
        super().__init__(max_retries=max_retries)
        self.refuse = set(refuse)
        self.failures = failures
        self.attempts: Counter[tuple[str, str]] = Counter()

    def emit(self, event: Event) -> None:
        if event.type in self.refuse:
            key = (event.workflow_run_id, event.type)
            self.attempts[key] += 1
            if self.failures is None or self.attempts[key] <= self.failures:
                raise ConnectionError(f"sink refused {event.type}")
        super().emit(event)


# -- driving ------------------------------------------------------------------------


def create(tk: TK, workflow_id: str, value: int = 1, **fields: Any) -> str:
    """Create a run of ``workflow_id`` with input ``{"value": value}``; its id."""
    return tk.dispatch(
        RunCreate(workflow_id=workflow_id, input={"value": value}, **fields)
    ).workflow_run_id


def start(tk: TK, workflow_id: str, value: int = 1, **fields: Any) -> str:
    """Create a run and claim it, so its first group is queued; its id."""
    run_id = create(tk, workflow_id, value, **fields)
    claimed = tk.dispatch(RunClaimPending(worker_id="claimer")).claimed
    assert [c.workflow_run_id for c in claimed] == [run_id]
    return run_id


# -- reading --------------------------------------------------------------------------


def run_of(store: Store, run_id: str) -> WorkflowRun:
    run = store.get_run(run_id)
    assert run is not None, f"run {run_id!r} is missing"
    return run


def stage_of(store: Store, run_id: str, stage_id: str) -> WorkflowStage:
    found = [s for s in store.get_stages(run_id) if s.stage_id == stage_id]
    assert len(found) == 1, f"expected one {stage_id!r} stage, got {found!r}"
    return found[0]


def job_of(store: Store, run_id: str, stage_id: str) -> Job:
    found = [j for j in store.get_jobs(run_id) if j.stage_id == stage_id]
    assert len(found) == 1, f"expected one {stage_id!r} job, got {found!r}"
    return found[0]


def outbox(store: Store, run_id: str) -> list[OutboxEvent]:
    return store.get_outbox(run_id)


def event_types(store: Store, run_id: str) -> list[str]:
    return [event.event_type for event in store.get_outbox(run_id)]


def events_of(store: Store, run_id: str, event_type: str) -> list[OutboxEvent]:
    return [e for e in store.get_outbox(run_id) if e.event_type == event_type]


def payload_without_time(event: OutboxEvent) -> dict[str, Any]:
    return {k: v for k, v in event.payload.items() if k != "timestamp"}


def idempotency_record(store: Store, key: str, command_type: str) -> Any:
    with store.transaction() as tx:
        return tx.get_idempotency(key, command_type)


# -- writing state directly ---------------------------------------------------------


def insert(store: Store, *effects: StoreEffect) -> None:
    """Apply effects in one transaction (to set up a state no command path reaches)."""
    with store.transaction() as tx:
        tx.apply(effects)


def env(now: datetime = T0, prefix: str = "id") -> Env:
    """A decision environment with fresh sequential ids."""
    return Env(now=now, new_id=SequentialIds(prefix).new_id, causation_id="cause")


def make_run(
    workflow_id: str = "linear",
    *,
    id: str = "run-1",
    status: Status = Status.RUNNING,
    input: Any = None,
    **changes: Any,
) -> WorkflowRun:
    run = WorkflowRun(
        id=id,
        workflow_id=workflow_id,
        workflow_name=workflow_id.title(),
        status=status,
        input={"value": 1} if input is None else input,
        created_at=T0,
        started_at=None if status == Status.PENDING else T0,
    )
    return evolve(run, **changes)


def make_stage(
    stage_id: str,
    *,
    run_id: str = "run-1",
    number: int = 1,
    group: int | None = None,
    status: Status = Status.COMPLETED,
    **changes: Any,
) -> WorkflowStage:
    stage = WorkflowStage(
        id=f"{run_id}/{stage_id}",
        workflow_run_id=run_id,
        stage_id=stage_id,
        stage_name=stage_id.title(),
        stage_number=number,
        execution_group=number if group is None else group,
        status=status,
        created_at=T0,
        started_at=None if status == Status.PENDING else T0,
        output_ref=(
            f"runs/{run_id}/stages/{stage_id}/output" if status == Status.COMPLETED else None
        ),
        attempt=0 if status == Status.PENDING else 1,
    )
    return evolve(stage, **changes)


def make_job(
    stage_id: str,
    *,
    run_id: str = "run-1",
    workflow_id: str = "linear",
    status: JobStatus = JobStatus.QUEUED,
    **changes: Any,
) -> Job:
    job = Job(
        id=f"job-{run_id}-{stage_id}",
        workflow_run_id=run_id,
        workflow_id=workflow_id,
        stage_id=stage_id,
        status=status,
        available_at=T0,
        created_at=T0,
    )
    return evolve(job, **changes)
