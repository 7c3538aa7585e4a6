"""Plugins: event handlers behind the outbox, with retries and a dead-letter queue."""

import attrs

from adapters import create_kernel
from adapters.memory import InMemoryStore
from kernel import (
    Event,
    OutboxFlush,
    PluginReplayDLQ,
    RunClaimPending,
    RunCreate,
    StageContext,
    WorkflowBuilder,
    WorkflowCompleted,
    define_plugin,
    define_stage,
)


@attrs.frozen
class Order:
    order_id: str


@attrs.frozen
class NoConfig:
    pass


def accept(ctx: StageContext[Order, NoConfig]) -> Order:
    return ctx.input


accept_stage = define_stage(
    id="accept", name="Accept", input=Order, output=Order, config=NoConfig, execute=accept
)
orders = WorkflowBuilder("orders", "Orders", input=Order, output=Order).pipe(accept_stage).build()


# --8<-- [start:plugin]
completed_runs: list[str] = []


def record_completion(event: Event) -> None:
    assert isinstance(event, WorkflowCompleted)
    completed_runs.append(event.workflow_run_id)


class Webhook:
    """Calls a (pretend) webhook for every new run."""

    def __init__(self) -> None:
        self.is_up = False

    def __call__(self, event: Event) -> None:
        if not self.is_up:
            raise ConnectionError("webhook unreachable")  # the delivery failed


def main() -> None:
    webhook = Webhook()
    audit_plugin = define_plugin("audit", {"workflow:completed": record_completion})
    webhook_plugin = define_plugin("webhook", {"workflow:created": webhook})

    store = InMemoryStore()
    kernel = create_kernel(orders, store=store, plugins=[audit_plugin, webhook_plugin])
    created = kernel.dispatch(RunCreate(workflow_id="orders", input={"order_id": "A-1"}))
    kernel.dispatch(RunClaimPending(worker_id="w"))
    while kernel.execute_next_job("w"):
        pass

    # workflow:created fails three times (the runner's max_retries) and is dead-lettered;
    # the run's later events wait behind it, so handlers see each run's events in order.
    for _ in range(3):
        assert kernel.dispatch(OutboxFlush()).published == 0
    [dead] = [event for event in store.get_outbox() if event.dlq_at is not None]
    assert (dead.event_type, dead.retry_count) == ("workflow:created", 3)

    # The dead letter no longer holds the run back ...
    assert kernel.dispatch(OutboxFlush()).published == 4
    assert completed_runs == [created.workflow_run_id]
    # ... and once the webhook is back, replaying the dead letters delivers it.
    webhook.is_up = True
    assert kernel.dispatch(PluginReplayDLQ()).replayed == 1
    assert kernel.dispatch(OutboxFlush()).published == 1


# --8<-- [end:plugin]


if __name__ == "__main__":
    main()
