"""Webhooks: another system's callback is a signal; its delivery id is the idempotency key."""

from collections.abc import Mapping
from typing import Any

import attrs

from kernel import (
    Kernel,
    RunCreate,
    RunSignal,
    RunSignalResult,
    StageContext,
    Status,
    WorkflowBuilder,
    define_signal_stage,
    define_stage,
)
from testing import create_test_kernel


@attrs.frozen
class Order:
    order_id: str
    amount_cents: int


@attrs.frozen
class PaymentRequest:
    order_id: str
    payment_id: str


@attrs.frozen
class Payment:
    payment_id: str
    amount_cents: int


@attrs.frozen
class Shipment:
    order_id: str
    paid_cents: int


@attrs.frozen
class NoConfig:
    pass


def request_payment(ctx: StageContext[Order, NoConfig]) -> PaymentRequest:
    # A real stage asks the payment provider for a payment here, passing the run id
    # along (as the provider's metadata) so that its webhook can name the run.
    return PaymentRequest(order_id=ctx.input.order_id, payment_id=f"pay-{ctx.input.order_id}")


def ship(ctx: StageContext[Payment, NoConfig]) -> Shipment:
    order = ctx.require(request_stage)
    return Shipment(order_id=order.order_id, paid_cents=ctx.input.amount_cents)


request_stage = define_stage(
    id="request",
    name="Request payment",
    input=Order,
    output=PaymentRequest,
    config=NoConfig,
    execute=request_payment,
)
paid_stage = define_signal_stage(id="paid", name="Paid", signal="payment", output=Payment)
ship_stage = define_stage(
    id="ship", name="Ship", input=Payment, output=Shipment, config=NoConfig, execute=ship
)
checkout = (
    WorkflowBuilder("checkout", "Checkout", input=Order, output=Shipment)
    .pipe(request_stage)
    .pipe(paid_stage)
    .pipe(ship_stage)
    .build()
)


# --8<-- [start:handler]
def on_payment_webhook(
    kernel: Kernel, headers: Mapping[str, str], body: Mapping[str, Any]
) -> RunSignalResult:
    """The payment provider's callback: turn it into the run's "payment" signal.

    Providers deliver a webhook again when they did not see our answer; the
    delivery id is the same each time, so as the idempotency key it makes a
    retried delivery a replay (same result, nothing written), not a second signal.
    """
    return kernel.dispatch(
        RunSignal(
            body["metadata"]["workflow_run_id"],
            "payment",
            # Only what the provider repeats unchanged: a replay must send the same payload.
            {"payment_id": body["id"], "amount_cents": body["amount"]},
            idempotency_key=f"payments-webhook:{headers['Webhook-Id']}",
        )
    )


# --8<-- [end:handler]


# --8<-- [start:test]
def test_a_webhook_delivered_twice_is_one_signal() -> None:
    test = create_test_kernel(checkout)
    run_id = test.dispatch(
        RunCreate(workflow_id="checkout", input={"order_id": "A-7", "amount_cents": 1250})
    ).workflow_run_id
    body = {"id": "pay-A-7", "amount": 1250, "metadata": {"workflow_run_id": run_id}}
    headers = {"Webhook-Id": "delivery-1"}

    # The payment went through before a worker even started the run: the signal is kept.
    first = on_payment_webhook(test.kernel, headers, body)
    assert (first.delivered, first.buffered) == (False, True)
    # Our answer was lost, so the provider delivers the same webhook again.
    again = on_payment_webhook(test.kernel, headers, body)
    assert again == first
    assert len(test.store.get_signals(run_id)) == 1

    test.run_until_idle()  # "paid" takes the kept signal as soon as it starts waiting

    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"order_id": "A-7", "paid_cents": 1250}


# --8<-- [end:test]
