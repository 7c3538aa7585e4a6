"""``stage.pollSuspended``: claim due stages (one transaction), then for each: run its
``check_completion`` outside any transaction and record the outcome (one transaction)."""

from __future__ import annotations

from collections.abc import Sequence

from kernel.commands import StagePollSuspended, StagePollSuspendedResult
from kernel.decisions import stage_poll_suspended as poll
from kernel.decisions.lifecycle import StageState
from kernel.outcomes import CheckOutcome, Failed
from kernel.shell.reads import Reads
from kernel.shell.steps import Done, Outside, Phase, Step, Transaction, Within

Checked = tuple[str, poll.Verdict]
"""A checked stage's run id and what its check changed."""


def begin(cmd: StagePollSuspended) -> Phase[StagePollSuspendedResult]:
    """Claim the stages due at the decision's time."""

    def load(reads: Reads) -> list[poll.DueStage]:
        due: list[poll.DueStage] = []
        for record in reads.tx.due_suspended_stages(reads.now, cmd.max_checks):
            run = reads.tx.get_run(record.workflow_run_id)
            if (
                run is not None
                and reads.workflow_of(run) is None
                and run.workflow_id in reads.known_workflow_ids()
            ):
                # Another version of a workflow it has: a worker holding that version
                # polls it (SPEC §16: a rolling deploy never fails old runs).
                continue
            stages = reads.tx.get_stages(record.workflow_run_id) if run is not None else []
            due.append(
                poll.DueStage(
                    record,
                    run,
                    reads.workflow_of(run),
                    reads.previous_outputs(run, stages, record.stage_id),
                )
            )
        return due

    return Transaction(
        load, lambda due, env: poll.claim(due, env), lambda claimed: _next(claimed, [])
    )


def _next(
    claimed: Sequence[poll.ClaimedCheck], checked: list[Checked]
) -> Step[StagePollSuspendedResult]:
    """Check the next claimed stage, or report when every one is recorded."""
    if not claimed:
        return Done(_summary(checked))
    head, rest = claimed[0], claimed[1:]
    check = head.check
    if isinstance(check, Failed):
        # Nothing to run: record the failure in this same transaction.
        return Within(_record(head, check, rest, checked))
    return Outside(check, lambda outcome: _record(head, outcome, rest, checked))


def _record(
    head: poll.ClaimedCheck,
    outcome: CheckOutcome,
    rest: Sequence[poll.ClaimedCheck],
    checked: list[Checked],
) -> Phase[StagePollSuspendedResult]:
    """Record one check in its own transaction, then go on with the rest."""
    record = head.record

    def load(reads: Reads) -> StageState:
        jobs = [
            job
            for job in reads.tx.get_jobs(record.workflow_run_id)
            if job.stage_id == record.stage_id and job.is_open
        ]
        return reads.stage_state(
            record.workflow_run_id,
            group=record.execution_group,
            job=jobs[-1] if jobs else None,
        )

    return Transaction(
        load,
        lambda state, env: poll.decide(record, outcome, state, env),
        lambda verdict: _next(rest, [*checked, (record.workflow_run_id, verdict)]),
    )


def _summary(checked: list[Checked]) -> StagePollSuspendedResult:
    resumed = [run_id for run_id, verdict in checked if verdict == "resumed"]
    return StagePollSuspendedResult(
        checked=len(checked),
        resumed=len(resumed),
        failed=sum(verdict == "failed" for _, verdict in checked),
        # Each run once, in the order it resumed: a host transitions it once.
        resumed_workflow_run_ids=list(dict.fromkeys(resumed)),
    )
