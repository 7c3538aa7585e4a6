"""``batch.cancelPending``: read pending provider cancels (one transaction), call each
provider's ``cancel`` (outside), settle them (one transaction)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kernel.ai.ledger import BatchCancel
from kernel.commands import BatchCancelPending, BatchCancelPendingResult
from kernel.decisions import batch_cancel
from kernel.effects import CancelBatches
from kernel.shell.steps import Done, Outside, Phase, Step, Transaction, single


def begin(cmd: BatchCancelPending) -> Phase[BatchCancelPendingResult]:
    """Read up to ``max_cancels`` pending cancels, oldest first."""

    def then(work: CancelBatches | None) -> Step[BatchCancelPendingResult]:
        if work is None:
            return Done(BatchCancelPendingResult(cancelled=0, failed=0))
        return Outside(work, lambda outcomes: _settle(work.cancels, outcomes))

    return Transaction(
        lambda reads: reads.tx.pending_batch_cancels(cmd.max_cancels),
        lambda pending, env: batch_cancel.plan(pending),
        then,
    )


def _settle(
    cancels: Sequence[BatchCancel], outcomes: Mapping[str, str | None]
) -> Phase[BatchCancelPendingResult]:
    return single(
        lambda reads: None,
        lambda _, env: batch_cancel.settle(cancels, outcomes, env),
    )
