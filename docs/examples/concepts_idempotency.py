"""Idempotency keys: a retried request creates one run, a different payload is refused."""

import attrs

from kernel import (
    IdempotencyConflictError,
    InvalidInputError,
    RunCreate,
    StageContext,
    WorkflowBuilder,
    define_stage,
)
from testing import create_test_kernel


@attrs.frozen
class Order:
    order_id: str
    amount: int


@attrs.frozen
class NoConfig:
    pass


def accept(ctx: StageContext[Order, NoConfig]) -> Order:
    return ctx.input


accept_stage = define_stage(
    id="accept", name="Accept", input=Order, output=Order, config=NoConfig, execute=accept
)
orders = WorkflowBuilder("orders", "Orders", input=Order, output=Order).pipe(accept_stage).build()


def main() -> None:
    test = create_test_kernel(orders)
    request = RunCreate(
        workflow_id="orders",
        input={"order_id": "A-1", "amount": 42},
        idempotency_key="order-A-1",
    )
    first = test.dispatch(request)
    # The client timed out and sends the same request again: same run, nothing new.
    again = test.dispatch(request)
    assert again.workflow_run_id == first.workflow_run_id
    assert len(test.store.list_runs()) == 1
    assert [event.event_type for event in test.store.get_outbox()] == ["workflow:created"]

    # The same key with a different payload is a client bug, not a retry.
    try:
        test.dispatch(
            RunCreate(
                workflow_id="orders",
                input={"order_id": "A-1", "amount": 43},
                idempotency_key="order-A-1",
            )
        )
    except IdempotencyConflictError as error:
        assert str(error) == (
            "idempotency key 'order-A-1' for run.create was used with a different payload"
        )
    else:
        raise AssertionError("expected IdempotencyConflictError")

    # A command that fails releases its key: fix the request and send it again.
    try:
        test.dispatch(
            RunCreate(
                workflow_id="orders",
                input={"order_id": "B-2", "amount": "ten"},
                idempotency_key="order-B-2",
            )
        )
    except InvalidInputError as error:
        assert error.problems == ("input.amount: expected int, got 'ten'",)
    fixed = test.dispatch(
        RunCreate(
            workflow_id="orders",
            input={"order_id": "B-2", "amount": 10},
            idempotency_key="order-B-2",
        )
    )
    assert fixed.workflow_run_id != first.workflow_run_id


if __name__ == "__main__":
    main()
