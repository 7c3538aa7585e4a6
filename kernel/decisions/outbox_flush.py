"""``outbox.flush`` and ``plugin.replayDLQ`` bookkeeping (SPEC §5.9, §5.10)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attrs import evolve
from returns.result import Result, Success

from kernel.commands import OutboxFlushResult, PluginReplayDLQResult
from kernel.decisions.env import Env
from kernel.effects import Decision, StoreEffect, UpdateOutbox
from kernel.errors import KernelError
from kernel.records import OutboxEvent

HELD = "held"
"""Delivery outcome of an event not attempted because an earlier event of its run
failed in the same flush (per-run order is kept)."""


def settle(
    events: Sequence[OutboxEvent],
    outcomes: Mapping[str, str | None],
    max_retries: int,
    env: Env,
) -> Result[Decision[OutboxFlushResult], KernelError]:
    """Record each delivery: ``None`` published, an error string a failed try
    (dead-lettered at ``max_retries``), :data:`HELD` released untouched."""
    effects: list[StoreEffect] = []
    published = failed = 0
    for event in events:
        outcome = outcomes.get(event.id, HELD)
        if outcome is None:
            published += 1
            effects.append(UpdateOutbox(evolve(event, published_at=env.now)))
        elif outcome == HELD:
            effects.append(UpdateOutbox(event))
        else:
            failed += 1
            retries = event.retry_count + 1
            dlq_at = env.now if retries >= max_retries else None
            effects.append(UpdateOutbox(evolve(event, retry_count=retries, dlq_at=dlq_at)))
    return Success(Decision(OutboxFlushResult(published=published, failed=failed), tuple(effects)))


def replay(
    dead: Sequence[OutboxEvent],
) -> Result[Decision[PluginReplayDLQResult], KernelError]:
    """Reset dead-lettered events so the next flush tries them again."""
    effects = tuple(UpdateOutbox(evolve(event, retry_count=0, dlq_at=None)) for event in dead)
    return Success(Decision(PluginReplayDLQResult(replayed=len(dead)), effects))
