"""``outbox.flush`` (SPEC §5.9, §6.2)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kernel import Event, OutboxFlush, WorkflowCreated, WorkflowStarted
from testing import CollectingEventSink, FakeClock
from tests.harness import T0, TK, MakeKernel, RefusingSink, create, outbox, start
from tests.workflows import Calls, linear

FLUSH = OutboxFlush()


def test_flush_publishes_events_to_the_sink(make_tk: MakeKernel, sink: CollectingEventSink) -> None:
    """SPEC §5.9: unpublished events go to the sink, rebuilt as event objects."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")

    result = tk.dispatch(FLUSH)

    assert result.published == 2
    assert sink.events == [
        WorkflowCreated(workflow_run_id=run_id, timestamp=T0, workflow_id="linear"),
        WorkflowStarted(workflow_run_id=run_id, timestamp=T0),
    ]


def test_flush_marks_events_published(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.9: a delivered event is marked published, at the flush time."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")
    now = clock.advance(timedelta(seconds=4))

    tk.dispatch(FLUSH)

    assert [e.published_at for e in outbox(tk.store, run_id)] == [now]


def test_flush_publishes_each_event_once(make_tk: MakeKernel, sink: CollectingEventSink) -> None:
    """SPEC §5.9: a published event is not published again."""
    tk = make_tk(linear(Calls()))
    create(tk, "linear")
    tk.dispatch(FLUSH)

    assert tk.dispatch(FLUSH).published == 0
    assert len(sink.events) == 1


def test_flush_keeps_each_run_in_sequence_order(
    make_tk: MakeKernel, sink: CollectingEventSink
) -> None:
    """SPEC §5.9: per run, events are published in sequence order."""
    tk = make_tk(linear(Calls()))
    first = create(tk, "linear")
    second = create(tk, "linear", 2)
    tk.run_until_idle()
    expected = {
        run_id: [e.event_type for e in outbox(tk.store, run_id)] for run_id in (first, second)
    }

    published = {
        run_id: [e.type for e in sink.events if e.workflow_run_id == run_id]
        for run_id in (first, second)
    }

    assert published == expected
    assert len(expected[first]) == 9


def test_flush_publishes_at_most_max_events(make_tk: MakeKernel) -> None:
    """SPEC §5.9: ``max_events`` bounds one flush."""
    tk = make_tk(linear(Calls()))
    for value in range(3):
        start(tk, "linear", value)

    first = tk.dispatch(OutboxFlush(max_events=4))
    rest = tk.dispatch(OutboxFlush(max_events=4))

    assert (first.published, rest.published) == (4, 2)


def test_flush_with_nothing_to_publish_publishes_nothing(make_tk: MakeKernel) -> None:
    """SPEC §5.9: an empty outbox is an empty result."""
    tk = make_tk(linear(Calls()))

    assert tk.dispatch(FLUSH).published == 0


def test_failed_delivery_counts_a_retry(make_tk: MakeKernel) -> None:
    """SPEC §5.9: a failure increments the event's retry count; it stays unpublished."""
    tk = make_tk(linear(Calls()), sink=RefusingSink({"workflow:created"}))
    run_id = create(tk, "linear")

    result = tk.dispatch(FLUSH)

    assert result.published == 0
    [event] = outbox(tk.store, run_id)
    assert (event.retry_count, event.published_at, event.dlq_at) == (1, None, None)


def test_failed_delivery_holds_back_later_events_of_its_run(make_tk: MakeKernel) -> None:
    """SPEC §5.9: later events of the same run wait, so per-run order is kept."""
    refusing = RefusingSink({"workflow:created"})
    tk = make_tk(linear(Calls()), sink=refusing)
    run_id = start(tk, "linear")

    tk.dispatch(FLUSH)

    created, started = outbox(tk.store, run_id)
    assert (created.retry_count, started.retry_count) == (1, 0)
    assert started.published_at is None
    assert refusing.events == []


def test_failed_delivery_does_not_hold_back_other_runs(make_tk: MakeKernel) -> None:
    """SPEC §5.9: order is per run; other runs' events are still published."""
    refusing = RefusingSink({"workflow:started"})
    tk = make_tk(linear(Calls()), sink=refusing)
    blocked = start(tk, "linear")
    free = create(tk, "linear", 2)

    result = tk.dispatch(FLUSH)

    assert result.published == 2
    assert [(e.workflow_run_id, e.type) for e in refusing.events] == [
        (blocked, "workflow:created"),
        (free, "workflow:created"),
    ]


def test_held_back_events_are_published_once_the_sink_recovers(make_tk: MakeKernel) -> None:
    """SPEC §5.9: delivery is retried on the next flush; order is still per sequence."""
    refusing = RefusingSink({"workflow:created"}, failures=1)
    tk = make_tk(linear(Calls()), sink=refusing)
    run_id = start(tk, "linear")
    tk.dispatch(FLUSH)

    assert tk.dispatch(FLUSH).published == 2
    assert refusing.types == ["workflow:created", "workflow:started"]
    assert all(e.published_at is not None for e in outbox(tk.store, run_id))


def test_delivery_failing_max_retries_times_dead_letters_the_event(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.9: at the sink's ``max_retries`` (default 3) the event goes to the DLQ."""
    tk = make_tk(linear(Calls()), sink=RefusingSink({"workflow:created"}))
    run_id = create(tk, "linear")

    for _ in range(2):
        tk.dispatch(FLUSH)
        assert outbox(tk.store, run_id)[0].dlq_at is None
    now = clock.advance(timedelta(seconds=1))
    tk.dispatch(FLUSH)

    [event] = outbox(tk.store, run_id)
    assert (event.retry_count, event.dlq_at, event.published_at) == (3, now, None)


def test_sink_max_retries_sets_when_an_event_is_dead_lettered(make_tk: MakeKernel) -> None:
    """SPEC §5.9: the sink's own ``max_retries`` is the limit."""
    tk = make_tk(linear(Calls()), sink=RefusingSink({"workflow:created"}, max_retries=1))
    run_id = create(tk, "linear")

    tk.dispatch(FLUSH)

    assert outbox(tk.store, run_id)[0].dlq_at is not None


def test_dead_lettered_event_is_not_delivered_again(make_tk: MakeKernel) -> None:
    """SPEC §5.9: flushes skip the dead-letter queue."""
    refusing = RefusingSink({"workflow:created"}, max_retries=1)
    tk = make_tk(linear(Calls()), sink=refusing)
    run_id = create(tk, "linear")
    tk.dispatch(FLUSH)

    tk.dispatch(FLUSH)

    assert refusing.attempts[(run_id, "workflow:created")] == 1


def test_dead_lettered_event_no_longer_holds_back_its_run(make_tk: MakeKernel) -> None:
    """SPEC §5.9: events are held back only in the flush where an earlier one failed;
    once that one is dead-lettered, the run's later events flow again."""
    refusing = RefusingSink({"workflow:created"}, max_retries=1)
    tk = make_tk(linear(Calls()), sink=refusing)
    run_id = start(tk, "linear")
    tk.dispatch(FLUSH)

    assert tk.dispatch(FLUSH).published == 1
    assert refusing.types == ["workflow:started"]
    assert outbox(tk.store, run_id)[1].published_at is not None


def test_flushes_never_publish_the_same_event_twice(make_tk: MakeKernel) -> None:
    """SPEC §5.9: a second flusher, running while the first delivers, gets nothing."""
    inner: list[int] = []
    kernels: list[TK] = []

    class ReentrantSink(CollectingEventSink):
        def emit(self, event: Event) -> None:
            super().emit(event)
            if not inner:
                inner.append(kernels[0].dispatch(FLUSH).published)

    reentrant = ReentrantSink()
    tk = make_tk(linear(Calls()), sink=reentrant)
    kernels.append(tk)
    start(tk, "linear")

    assert tk.dispatch(FLUSH).published == 2
    assert inner == [0]
    assert len(reentrant.events) == 2


def test_flush_command_refuses_zero_max_events() -> None:
    """SPEC §5: a bad field fails where the command is made."""
    with pytest.raises(ValueError, match="max_events: expected an int >= 1, got 0"):
        OutboxFlush(max_events=0)
