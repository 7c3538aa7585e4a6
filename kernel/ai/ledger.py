"""The usage ledger's rows and the provider cancels a batch stage leaves pending
(SPEC §11, §12.1)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from attrs import frozen

from kernel.ai.types import Usage, UsageKind


@frozen(kw_only=True)
class UsageEntry:
    """One completed provider call, as ``usage.record`` wrote it.

    ``note`` says what was odd about the call's usage (a provider reply
    without token counts is recorded with the tokens it had, and says so).
    """

    call_id: str
    workflow_run_id: str
    stage_id: str
    attempt: int
    model: str
    kind: UsageKind
    usage: Usage
    cost: Decimal
    priced: bool
    recorded_at: datetime
    note: str | None = None


@frozen(kw_only=True)
class BatchCancel:
    """A provider batch to cancel after commit (``run.cancel``, ``BATCH_TIMEOUT``):
    kept until the provider's ``cancel`` call succeeds."""

    batch_id: str
    provider: str
    workflow_run_id: str
    stage_id: str
    requested_at: datetime
    attempts: int = 0
    last_error: str | None = None


__all__ = ["BatchCancel", "UsageEntry"]
