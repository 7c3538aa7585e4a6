"""Provider batch cancels (SPEC §12.1): which stage leaves one pending, and
``batch.cancelPending``, which calls the providers after commit and settles each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from returns.result import Result, Success

from kernel.ai.ledger import BatchCancel
from kernel.commands import BatchCancelPendingResult
from kernel.copying import evolve
from kernel.decisions.context import Env
from kernel.effects import (
    CancelBatches,
    Decision,
    DeleteBatchCancel,
    InsertBatchCancel,
    StoreEffect,
    UpdateBatchCancel,
)
from kernel.errors import KernelError
from kernel.llm_batch_state import read_progress
from kernel.records import Json, WorkflowStage
from kernel.workflows import Workflow


def pending_cancel(
    record: WorkflowStage,
    workflow: Workflow[Any, Any] | None,
    now: datetime,
    state: Json = None,
) -> list[StoreEffect]:
    """The pending cancel of an LLM batch stage's batch in flight (none if the stage is
    not one, or its batch id is not known yet). ``state`` replaces the record's
    ``suspended_state`` (a poll's new state)."""
    stage = workflow.stage(record.stage_id) if workflow is not None else None
    if stage is None or stage.batch_provider is None:
        return []
    progress = read_progress(record.suspended_state if state is None else state)
    if progress is None or progress.batch_id is None:
        return []
    cancel = BatchCancel(
        batch_id=progress.batch_id,
        provider=progress.provider,
        workflow_run_id=record.workflow_run_id,
        stage_id=record.stage_id,
        requested_at=now,
    )
    return [InsertBatchCancel(cancel)]


def plan(
    pending: Sequence[BatchCancel],
) -> Result[Decision[CancelBatches | None], KernelError]:
    """Cancel every pending batch read (oldest first); nothing pending, nothing to do."""
    if not pending:
        return Success(Decision(None))
    return Success(Decision(CancelBatches(cancels=tuple(pending))))


def settle(
    cancels: Sequence[BatchCancel], outcomes: Mapping[str, str | None], env: Env
) -> Result[Decision[BatchCancelPendingResult], KernelError]:
    """Forget each cancel the provider took; count a failure (with its error) on each
    other one, which stays pending for the next call."""
    effects: list[StoreEffect] = []
    cancelled = failed = 0
    for cancel in cancels:
        error = outcomes.get(cancel.batch_id, "not attempted")
        if error is None:
            cancelled += 1
            effects.append(DeleteBatchCancel(cancel.batch_id))
        else:
            failed += 1
            tried = evolve(cancel, attempts=cancel.attempts + 1, last_error=error)
            effects.append(UpdateBatchCancel(tried))
    result = BatchCancelPendingResult(cancelled=cancelled, failed=failed)
    return Success(Decision(result, tuple(effects)))
