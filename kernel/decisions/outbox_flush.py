"""``outbox.flush``: publish claimed events in per-run order, then record each delivery
(SPEC §5.9)."""

from __future__ import annotations

from collections.abc import Sequence

from returns.result import Result, Success

from kernel.commands import OutboxFlushResult
from kernel.copying import evolve
from kernel.decisions.context import Env
from kernel.effects import Decision, Deliver, StoreEffect, UpdateOutbox
from kernel.errors import KernelError
from kernel.outcomes import Deliveries
from kernel.records import OutboxEvent


def plan(claimed: Sequence[OutboxEvent]) -> Result[Decision[Deliver | None], KernelError]:
    """What to publish: the claimed events, in insertion order (per run: sequence order).

    Delivery of a run stops at its first failure (:class:`~kernel.effects.Deliver`),
    so a run's later events wait for the earlier one. Nothing claimed, nothing to do.
    """
    if not claimed:
        return Success(Decision(None))
    return Success(Decision(Deliver(events=tuple(claimed))))


def settle(
    events: Sequence[OutboxEvent],
    outcomes: Deliveries,
    max_retries: int,
    env: Env,
) -> Result[Decision[OutboxFlushResult], KernelError]:
    """Record each delivery: ``None`` published, an error string a failed try
    (dead-lettered at ``max_retries``); an event not attempted (held back behind
    a failure of its run) has its claim released untouched."""
    effects: list[StoreEffect] = []
    published = failed = 0
    for event in events:
        if event.id not in outcomes:
            effects.append(UpdateOutbox(event))
            continue
        outcome = outcomes[event.id]
        if outcome is None:
            published += 1
            effects.append(UpdateOutbox(evolve(event, published_at=env.now)))
        else:
            failed += 1
            retries = event.retry_count + 1
            dlq_at = env.now if retries >= max_retries else None
            effects.append(UpdateOutbox(evolve(event, retry_count=retries, dlq_at=dlq_at)))
    return Success(Decision(OutboxFlushResult(published=published, failed=failed), tuple(effects)))
