"""Retention (SPEC §16, §16.1): ``runs.purge`` deletes finished runs past their time.

"Finished" is ``completed_at``, which every terminal status sets. The store
hands over the candidates (``StoreTransaction.purgeable_runs``: terminal runs
finished before the cutoff with no unpublished outbox event, oldest first,
locked); the rule below checks each again, so a store that hands over a run
it should not have cannot make the kernel delete it, and deletes each with
one :class:`~kernel.effects.PurgeRun` carrying the version it read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from returns.result import Result, Success

from kernel.commands import RunsPurge, RunsPurgeResult
from kernel.decisions.context import Env
from kernel.effects import Decision, PurgeRun
from kernel.errors import KernelError
from kernel.records import WorkflowRun
from kernel.status import RUN_TERMINAL


def cutoff(cmd: RunsPurge, now: datetime) -> datetime:
    """The moment before which a run must have finished to be purged."""
    return now - cmd.older_than


def purgeable(cmd: RunsPurge, run: WorkflowRun, finished_before: datetime) -> bool:
    """Whether ``run`` may go: finished (a terminal status with ``completed_at`` set),
    with one of the command's statuses, before ``finished_before``."""
    return (
        run.status in RUN_TERMINAL
        and run.status in cmd.statuses
        and run.completed_at is not None
        and run.completed_at < finished_before
    )


def decide(
    cmd: RunsPurge, candidates: Sequence[WorkflowRun], env: Env
) -> Result[Decision[RunsPurgeResult], KernelError]:
    """Delete the purgeable ``candidates`` (at most ``cmd.limit``), oldest finish first;
    a dry run deletes nothing and names the runs that would go."""
    finished_before = cutoff(cmd, env.now)
    chosen = [run for run in candidates if purgeable(cmd, run, finished_before)]
    chosen.sort(key=lambda run: (run.completed_at or finished_before, run.id))
    chosen = chosen[: cmd.limit]
    run_ids = tuple(run.id for run in chosen)
    if cmd.dry_run:
        would = RunsPurgeResult(purged=0, run_ids=run_ids, finished_before=finished_before)
        return Success(Decision(would))
    effects = tuple(PurgeRun(run.id, run.version) for run in chosen)
    result = RunsPurgeResult(purged=len(chosen), run_ids=run_ids, finished_before=finished_before)
    return Success(Decision(result, effects))
