"""``usage.record``: write one paid provider call to the usage ledger (SPEC §11, §12.1).

The call is added at once, in its own transaction, to the ledger, to the run's
``total_cost`` and ``total_tokens``, and to the metrics of the stage that made
it (``total_cost``, ``total_tokens``, ``calls``). ``call_id`` is made before the
request is sent and is the key: recording it again changes nothing. What was
paid stays paid: a terminal run, a finished or cancelled stage, an attempt
that later fails, all still record (see :mod:`kernel.decisions.totals`).
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen
from returns.result import Failure, Result, Success

from kernel.ai.ledger import UsageEntry
from kernel.commands import UsageRecord, UsageRecordResult
from kernel.decisions.changes import bump_stage
from kernel.decisions.context import Env
from kernel.decisions.totals import budget_left, charge_run, merge_metrics
from kernel.effects import Decision, InsertUsage, StoreEffect
from kernel.errors import InvalidInputError, KernelError, RunNotFoundError
from kernel.records import WorkflowRun, WorkflowStage


@frozen
class Recording:
    """What ``usage.record`` reads: the run (locked), its stage records, and the
    ledger row already written under the command's ``call_id``, if any."""

    run: WorkflowRun | None
    stages: Sequence[WorkflowStage]
    recorded: UsageEntry | None


def charge(
    run: WorkflowRun, record: WorkflowStage | None, entry: UsageEntry
) -> tuple[WorkflowRun, list[StoreEffect]]:
    """The run with the call added to its totals, and the effects: the ledger row,
    the run's totals, and the stage record's metrics (when the record exists).

    For decisions that record a call in a transaction they already hold (the
    ledger row's ``call_id`` must be new there).
    """
    tokens = entry.usage.total_tokens
    charged, update_run = charge_run(run, entry.cost, tokens)
    effects: list[StoreEffect] = [InsertUsage(entry), update_run]
    if record is not None:
        call = {"total_cost": str(entry.cost), "total_tokens": tokens, "calls": 1}
        effects.append(bump_stage(record, metrics=merge_metrics(record.metrics, call))[1])
    return charged, effects


def decide(
    cmd: UsageRecord, state: Recording, env: Env
) -> Result[Decision[UsageRecordResult], KernelError]:
    """Record the call, or change nothing if its ``call_id`` was recorded before.

    The run must exist (``RunNotFoundError``, nothing written); its status does
    not matter. A stage id with no record on the run (say, a stage a rerun has
    not reached again) still goes into the ledger and the run's totals.

    >>> from datetime import UTC, datetime
    >>> from decimal import Decimal
    >>> from kernel.ai.types import Usage
    >>> env = Env(datetime(2025, 1, 1, tzinfo=UTC), lambda: "id-1", "cmd-1")
    >>> cmd = UsageRecord(call_id="c1", workflow_run_id="nope", stage_id="s", attempt=1,
    ...                   model="fake:m", kind="text", usage=Usage(10, 5),
    ...                   cost=Decimal("0.001"), priced=True)
    >>> decide(cmd, Recording(None, (), None), env)
    <Failure: workflow run 'nope' does not exist>
    """
    run = state.run
    if run is None:
        return Failure(RunNotFoundError(cmd.workflow_run_id))
    if state.recorded is not None:
        if state.recorded.workflow_run_id != run.id:
            return Failure(
                InvalidInputError(
                    [
                        f"call_id: {cmd.call_id!r} was recorded for run "
                        f"{state.recorded.workflow_run_id!r}, not {run.id!r}"
                    ]
                )
            )
        seen = UsageRecordResult(
            recorded=False, run_total_cost=run.total_cost, budget_left=budget_left(run)
        )
        return Success(Decision(seen))
    entry = UsageEntry(
        call_id=cmd.call_id,
        workflow_run_id=run.id,
        stage_id=cmd.stage_id,
        attempt=cmd.attempt,
        model=cmd.model,
        kind=cmd.kind,
        usage=cmd.usage,
        cost=cmd.cost,
        priced=cmd.priced,
        recorded_at=env.now,
        note=cmd.note,
    )
    record = next((s for s in state.stages if s.stage_id == cmd.stage_id), None)
    charged, effects = charge(run, record, entry)
    result = UsageRecordResult(
        recorded=True, run_total_cost=charged.total_cost, budget_left=budget_left(charged)
    )
    return Success(Decision(result, tuple(effects)))
