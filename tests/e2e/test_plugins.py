"""Plugins behind the outbox: a failing handler dead-letters its event, a replay
brings it back (SPEC §5.9, §5.10, §7)."""

from __future__ import annotations

from datetime import timedelta
from typing import assert_type

import pytest

from kernel import (
    DefinitionError,
    Event,
    OutboxFlush,
    PluginReplayDLQ,
    PluginRunner,
    RunClaimPending,
    Status,
    WorkflowCompleted,
    define_plugin,
)
from kernel.ports import Store
from testing import CollectingEventSink, FakeClock, TestKernel, create_test_kernel
from tests.harness import MakeKernel, create, outbox, run_of
from tests.workflows import Calls, linear


class FlakyHandler:
    """Fails its first ``failures`` calls, then records what it was given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.handled: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"webhook down ({self.calls})")
        self.handled.append(event)


def test_plugin_handlers_receive_their_event_types(make_tk: MakeKernel) -> None:
    """SPEC §7: a ``PluginRunner`` routes each event to the handlers for its type."""
    completed: list[Event] = []
    created: list[Event] = []
    audit = define_plugin(
        "audit", {"workflow:completed": completed.append, "workflow:created": created.append}
    )
    tk = make_tk(linear(Calls()), sink=PluginRunner([audit]))
    run_id = create(tk, "linear", 1)

    tk.run_until_idle()

    assert [e.workflow_run_id for e in created] == [run_id]
    [done] = completed
    assert isinstance(done, WorkflowCompleted)
    assert done.output == {"value": 4}


def test_failing_plugin_dead_letters_its_event_and_replay_brings_it_back(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.9, §5.10: three failures dead-letter ``workflow:created``; later events
    of the run wait while it fails; a replay lets the next flush publish it."""
    handler = FlakyHandler(failures=3)
    others: list[str] = []
    plugin = define_plugin(
        "webhook",
        {"workflow:created": handler, "workflow:started": lambda e: others.append(e.type)},
    )
    tk = make_tk(linear(Calls()), sink=PluginRunner([plugin], max_retries=3))
    run_id = create(tk, "linear")
    tk.dispatch(RunClaimPending(worker_id="w1"))

    for attempt in (1, 2, 3):
        clock.advance(timedelta(seconds=1))
        assert tk.dispatch(OutboxFlush()).published == 0
        created, started = outbox(tk.store, run_id)
        assert created.retry_count == attempt
        assert (started.published_at, others) == (None, [])  # held back behind it
    assert created.dlq_at == clock.now()

    assert tk.dispatch(PluginReplayDLQ()).replayed == 1
    assert tk.dispatch(OutboxFlush()).published == 2

    assert [e.workflow_run_id for e in handler.handled] == [run_id]
    assert others == ["workflow:started"]
    assert all(e.published_at is not None for e in outbox(tk.store, run_id))


def test_a_failing_plugin_does_not_stop_the_workflow(make_tk: MakeKernel) -> None:
    """SPEC §6.2: events are published after their state change committed; a sink
    that fails cannot undo or block the run itself."""

    def broken(event: Event) -> None:
        raise RuntimeError("plugin bug")

    plugin = define_plugin("broken", {"stage:completed": broken})
    tk = make_tk(linear(Calls()), sink=PluginRunner([plugin]))
    run_id = create(tk, "linear")

    tk.run_until_idle()

    assert run_of(tk.store, run_id).status == Status.COMPLETED
    dead = [e for e in outbox(tk.store, run_id) if e.dlq_at is not None]
    assert [e.event_type for e in dead] == ["stage:completed"] * 3


def test_define_plugin_refuses_an_unknown_event_type() -> None:
    """SPEC §7: handler keys are event types; a typo is caught at definition."""
    with pytest.raises(DefinitionError, match="unknown event type 'workflow:done'"):
        define_plugin("typo", {"workflow:done": print})


def test_create_test_kernel_publishes_to_the_plugins_it_is_given(
    store: Store, clock: FakeClock
) -> None:
    """``create_test_kernel(..., plugins=[...])`` wires a ``PluginRunner`` over them, as
    ``adapters.create_kernel`` does, and types ``tk.sink`` as that runner."""
    completed: list[Event] = []
    audit = define_plugin("audit", {"workflow:completed": completed.append})
    tk = create_test_kernel(linear(Calls()), store=store, clock=clock, plugins=[audit])
    assert_type(tk, TestKernel[FakeClock, PluginRunner])
    assert isinstance(tk.sink, PluginRunner)
    assert tk.sink.plugins == (audit,)
    run_id = create(tk, "linear", 1)

    tk.run_until_idle()

    assert [(e.type, e.workflow_run_id) for e in completed] == [("workflow:completed", run_id)]
    assert all(e.published_at is not None for e in outbox(tk.store, run_id))


def test_create_test_kernel_takes_plugins_or_a_sink_not_both() -> None:
    """Plugins replace the collecting sink; both at once is refused (and mistyped)."""
    audit = define_plugin("audit", {"workflow:completed": print})
    with pytest.raises(TypeError, match=r"pass sink= or plugins=, not both"):
        create_test_kernel(sink=CollectingEventSink(), plugins=[audit])  # type: ignore[call-overload]
    without = create_test_kernel(plugins=())
    assert_type(without, TestKernel[FakeClock, CollectingEventSink])
    assert isinstance(without.sink, CollectingEventSink)
    # Any plugins= but the default () makes the runner, so the inferred type holds.
    empty = create_test_kernel(plugins=[])
    assert_type(empty, TestKernel[FakeClock, PluginRunner])
    assert isinstance(empty.sink, PluginRunner) and empty.sink.plugins == ()
