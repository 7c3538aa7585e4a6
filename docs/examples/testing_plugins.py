"""Testing a plugin: ``create_test_kernel(..., plugins=[...])`` publishes events to it."""

import attrs

from kernel import (
    Event,
    Plugin,
    PluginReplayDLQ,
    RunCreate,
    StageContext,
    Status,
    WorkflowBuilder,
    WorkflowCompleted,
    WorkflowFailed,
    define_plugin,
    define_stage,
)
from testing import FakeClock, create_test_kernel


@attrs.frozen
class Order:
    order_id: str
    amount: int


@attrs.frozen
class NoConfig:
    pass


def accept(ctx: StageContext[Order, NoConfig]) -> Order:
    if ctx.input.amount <= 0:
        raise ValueError(f"amount must be positive, got {ctx.input.amount}")
    return ctx.input


accept_stage = define_stage(
    id="accept", name="Accept", input=Order, output=Order, config=NoConfig, execute=accept
)
orders = WorkflowBuilder("orders", "Orders", input=Order, output=Order).pipe(accept_stage).build()


# --8<-- [start:plugin]
class Chat:
    """A test double for a chat service; ``down`` makes every post fail."""

    def __init__(self) -> None:
        self.down = False
        self.posted: list[str] = []

    def post(self, text: str) -> None:
        if self.down:
            raise ConnectionError("chat unreachable")
        self.posted.append(text)


def notify_plugin(chat: Chat) -> Plugin:
    """The plugin under test, built around the chat it should post to."""

    def on_completed(event: Event) -> None:
        assert isinstance(event, WorkflowCompleted)
        chat.post(f"run {event.workflow_run_id} completed: {event.output}")

    def on_failed(event: Event) -> None:
        assert isinstance(event, WorkflowFailed)
        chat.post(f"run {event.workflow_run_id} failed: {event.error}")

    return define_plugin(
        "notify", {"workflow:completed": on_completed, "workflow:failed": on_failed}
    )


# --8<-- [end:plugin]


def create(amount: int) -> RunCreate:
    return RunCreate(workflow_id="orders", input={"order_id": "A-1", "amount": amount})


# --8<-- [start:test]
def test_plugin_posts_each_finished_run() -> None:
    chat = Chat()
    test = create_test_kernel(orders, plugins=[notify_plugin(chat)])

    done = test.dispatch(create(amount=42))
    failed = test.dispatch(create(amount=0))
    test.run_until_idle()  # runs the jobs and flushes the outbox to the plugin

    order = {"order_id": "A-1", "amount": 42}
    assert chat.posted == [
        f"run {done.workflow_run_id} completed: {order}",
        f"run {failed.workflow_run_id} failed: ValueError: amount must be positive, got 0",
    ]


# --8<-- [end:test]


# --8<-- [start:dead-letter]
def test_failing_plugin_is_dead_lettered_and_replayed() -> None:
    chat = Chat()
    chat.down = True
    test = create_test_kernel(orders, plugins=[notify_plugin(chat)])
    created = test.dispatch(create(amount=42))
    test.run_until_idle()

    # A plugin that fails cannot fail the run ...
    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.COMPLETED
    # ... its event is retried, then dead-lettered after the runner's max_retries (3).
    [dead] = [event for event in test.store.get_outbox() if event.dlq_at is not None]
    assert (dead.event_type, dead.retry_count) == ("workflow:completed", test.sink.max_retries)
    assert chat.posted == []

    chat.down = False
    assert test.dispatch(PluginReplayDLQ()).replayed == 1
    test.run_until_idle()  # the next flush delivers it
    assert chat.posted == [f"run {run.id} completed: {run.output}"]


# --8<-- [end:dead-letter]


# --8<-- [start:one-handler]
def test_handler_on_its_own() -> None:
    chat = Chat()
    plugin = notify_plugin(chat)
    event = WorkflowFailed(workflow_run_id="r-1", timestamp=FakeClock().now(), error="boom")
    plugin.handlers["workflow:failed"](event)
    assert chat.posted == ["run r-1 failed: boom"]


# --8<-- [end:one-handler]
