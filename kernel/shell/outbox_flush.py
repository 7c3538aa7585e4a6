"""``outbox.flush``: claim events (one transaction), publish them through the sink
(outside), record each delivery (one transaction)."""

from __future__ import annotations

from collections.abc import Sequence

from returns.result import Result

from kernel.commands import OutboxFlush, OutboxFlushResult
from kernel.decisions import outbox_flush
from kernel.decisions.context import OUTBOX_CLAIM_LEASE, Env
from kernel.effects import Decision, Deliver
from kernel.errors import KernelError
from kernel.outcomes import Deliveries
from kernel.records import OutboxEvent
from kernel.shell.steps import Done, Outside, Phase, Step, Transaction, single


def begin(cmd: OutboxFlush) -> Phase[OutboxFlushResult]:
    """Claim up to ``max_events`` events for this flush."""

    def then(work: Deliver | None) -> Step[OutboxFlushResult]:
        if work is None:
            return Done(OutboxFlushResult(published=0))
        return Outside(work, lambda outcomes: _settle(work.events, outcomes))

    return Transaction(
        lambda reads: reads.tx.claim_outbox(reads.now, cmd.max_events, OUTBOX_CLAIM_LEASE),
        _plan,
        then,
    )


def _plan(claimed: list[OutboxEvent], env: Env) -> Result[Decision[Deliver | None], KernelError]:
    return outbox_flush.plan(claimed)


def _settle(events: Sequence[OutboxEvent], outcomes: Deliveries) -> Phase[OutboxFlushResult]:
    return single(
        lambda reads: None,
        lambda _, env: outbox_flush.settle(
            events, outcomes, env.settings.max_delivery_attempts, env
        ),
    )
