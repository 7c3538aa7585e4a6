"""Driving the kernel one command at a time, to see what each command writes."""

import attrs

from adapters import create_kernel
from adapters.memory import InMemoryStore
from kernel import (
    JobExecute,
    OutboxFlush,
    RunClaimPending,
    RunCreate,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from testing import CollectingEventSink, FakeClock, SequentialIds


@attrs.frozen
class Order:
    order_id: str
    amount: int


@attrs.frozen
class Receipt:
    order_id: str
    charged: int


@attrs.frozen
class NoConfig:
    pass


store = InMemoryStore()
statuses_seen_by_user_code: list[Status] = []


def charge(ctx: StageContext[Order, NoConfig]) -> Receipt:
    # Phase 1 of job.execute has committed: the stage is RUNNING for every observer.
    statuses_seen_by_user_code.append(store.get_stages(ctx.workflow_run_id)[0].status)
    return Receipt(order_id=ctx.input.order_id, charged=ctx.input.amount)


charge_stage = define_stage(
    id="charge", name="Charge", input=Order, output=Receipt, config=NoConfig, execute=charge
)
checkout = (
    WorkflowBuilder("checkout", "Checkout", input=Order, output=Receipt).pipe(charge_stage).build()
)


def main() -> None:
    sink = CollectingEventSink()
    kernel = create_kernel(checkout, store=store, sink=sink, clock=FakeClock(), ids=SequentialIds())

    # run.create: a PENDING run, and workflow:created in the outbox (same transaction).
    created = kernel.dispatch(
        RunCreate(workflow_id="checkout", input={"order_id": "A-1", "amount": 42})
    )
    run_id = created.workflow_run_id
    assert created.status == Status.PENDING
    assert [event.event_type for event in store.get_outbox(run_id)] == ["workflow:created"]
    assert sink.events == []  # written, not yet published

    # run.claimPending: the run is RUNNING, its first group's stage and job exist.
    [claimed] = kernel.dispatch(RunClaimPending(worker_id="worker-1")).claimed
    run = store.get_run(run_id)
    assert run is not None and run.status == Status.RUNNING
    assert [stage.status for stage in store.get_stages(run_id)] == [Status.PENDING]

    # job.execute: start (commit) -> user code (no transaction) -> finish (commit).
    result = kernel.dispatch(
        JobExecute(
            workflow_run_id=run_id,
            workflow_id="checkout",
            stage_id="charge",
            config=run.config,
            job_id=claimed.job_ids[0],
        )
    )
    assert result.outcome == "completed"
    assert result.output == {"order_id": "A-1", "charged": 42}
    assert statuses_seen_by_user_code == [Status.RUNNING]
    # The last stage finished, so the finish transaction also completed the run.
    done = store.get_run(run_id)
    assert done is not None and done.status == Status.COMPLETED
    assert done.output == {"order_id": "A-1", "charged": 42}

    # outbox.flush: the sink receives every event, in the order it was written.
    assert kernel.dispatch(OutboxFlush()).published == 5
    assert sink.types == [
        "workflow:created",
        "workflow:started",
        "stage:started",
        "stage:completed",
        "workflow:completed",
    ]


if __name__ == "__main__":
    main()
