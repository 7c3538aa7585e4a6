"""``plugin.replayDLQ`` (SPEC §5.10)."""

from __future__ import annotations

import pytest

from kernel import OutboxFlush, PluginReplayDLQ
from tests.harness import TK, MakeKernel, RefusingSink, create, outbox
from tests.workflows import Calls, linear

FLUSH = OutboxFlush()


def dead_lettered(make_tk: MakeKernel, runs: int = 1) -> tuple[TK, RefusingSink, list[str]]:
    """Runs whose ``workflow:created`` was refused and dead-lettered
    (``max_retries=1``); the sink accepts every event from then on."""
    refusing = RefusingSink({"workflow:created"}, max_retries=1)
    tk = make_tk(linear(Calls()), sink=refusing)
    run_ids = [create(tk, "linear", value) for value in range(runs)]
    tk.dispatch(FLUSH)
    assert all(outbox(tk.store, run_id)[0].dlq_at is not None for run_id in run_ids)
    refusing.refuse.clear()
    return tk, refusing, run_ids


def test_replay_resets_dead_lettered_events(make_tk: MakeKernel) -> None:
    """SPEC §5.10: retry count back to 0, no longer dead-lettered."""
    tk, _, [run_id] = dead_lettered(make_tk)

    result = tk.dispatch(PluginReplayDLQ())

    assert result.replayed == 1
    [event] = outbox(tk.store, run_id)
    assert (event.retry_count, event.dlq_at, event.published_at) == (0, None, None)


def test_replayed_event_is_published_by_the_next_flush(make_tk: MakeKernel) -> None:
    """SPEC §5.10: the next flush retries a replayed event."""
    tk, refusing, [run_id] = dead_lettered(make_tk)
    tk.dispatch(PluginReplayDLQ())

    assert tk.dispatch(FLUSH).published == 1
    assert refusing.types == ["workflow:created"]
    assert outbox(tk.store, run_id)[0].published_at is not None


def test_replay_with_an_empty_dlq_replays_nothing(make_tk: MakeKernel) -> None:
    """SPEC §5.10: nothing dead-lettered, nothing to do."""
    tk = make_tk(linear(Calls()))
    create(tk, "linear")

    assert tk.dispatch(PluginReplayDLQ()).replayed == 0


def test_replay_leaves_published_and_waiting_events_alone(make_tk: MakeKernel) -> None:
    """SPEC §5.10: only dead-lettered events are touched."""
    tk, _, [dead] = dead_lettered(make_tk)
    published = create(tk, "linear", 5)
    tk.dispatch(FLUSH)
    waiting = create(tk, "linear", 6)
    before = outbox(tk.store, published) + outbox(tk.store, waiting)

    tk.dispatch(PluginReplayDLQ())

    assert outbox(tk.store, published) + outbox(tk.store, waiting) == before
    assert outbox(tk.store, dead)[0].dlq_at is None


def test_replay_takes_at_most_max_events(make_tk: MakeKernel) -> None:
    """SPEC §5.10: ``max_events`` bounds one replay."""
    tk, _, run_ids = dead_lettered(make_tk, runs=3)

    first = tk.dispatch(PluginReplayDLQ(max_events=2))
    rest = tk.dispatch(PluginReplayDLQ(max_events=2))

    assert (first.replayed, rest.replayed) == (2, 1)
    assert all(outbox(tk.store, run_id)[0].dlq_at is None for run_id in run_ids)


def test_replay_writes_no_new_event(make_tk: MakeKernel) -> None:
    """SPEC §5.10: a replay re-opens existing events; it adds none."""
    tk, _, [run_id] = dead_lettered(make_tk)

    tk.dispatch(PluginReplayDLQ())

    assert [e.sequence for e in outbox(tk.store, run_id)] == [1]


def test_replay_command_refuses_zero_max_events() -> None:
    """SPEC §5: a bad field fails where the command is made."""
    with pytest.raises(ValueError, match="max_events: expected an int >= 1, got 0"):
        PluginReplayDLQ(max_events=0)
