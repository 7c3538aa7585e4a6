"""The command table: every command's result type and first phase, in one place.

To add a command: write its decision module under :mod:`kernel.decisions`,
its loader here (what the decision reads, through :class:`~kernel.shell.reads.Reads`),
and one :func:`~kernel.shell.steps.entry` in :data:`TABLE`. See ``docs/architecture.md``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

from kernel.commands import (
    BatchCancelPending,
    BatchCancelPendingResult,
    BatchIntent,
    BatchIntentResult,
    JobExecute,
    JobExecuteResult,
    JobLease,
    JobLeaseResult,
    LeaseReapStale,
    LeaseReapStaleResult,
    LeaseRelease,
    LeaseReleaseResult,
    OutboxFlush,
    OutboxFlushResult,
    PluginReplayDLQ,
    PluginReplayDLQResult,
    RunCancel,
    RunCancelResult,
    RunClaimPending,
    RunClaimPendingResult,
    RunCreate,
    RunCreateResult,
    RunRerunFrom,
    RunRerunFromResult,
    RunSignal,
    RunSignalResult,
    RunsPurge,
    RunsPurgeResult,
    RunTransition,
    RunTransitionResult,
    ScheduleDelete,
    ScheduleDeleteResult,
    ScheduleTick,
    ScheduleTickResult,
    ScheduleUpsert,
    ScheduleUpsertResult,
    StagePollSuspended,
    StagePollSuspendedResult,
    StageReportProgress,
    StageReportProgressResult,
    UsageRecord,
    UsageRecordResult,
)
from kernel.copying import evolve
from kernel.decisions import (
    batch_intent,
    lease_reap_stale,
    lease_release,
    plugin_replay_dlq,
    run_cancel,
    run_claim_pending,
    run_create,
    run_rerun_from,
    run_signal,
    run_transition,
    runs_purge,
    schedules,
    stage_report_progress,
    usage_record,
)
from kernel.decisions.job_execute import start
from kernel.decisions.lifecycle import StageState
from kernel.records import Job, WorkflowRun
from kernel.shell import batch_cancel, claims, job_execute, outbox_flush, stage_poll_suspended
from kernel.shell.reads import Reads
from kernel.shell.steps import Phase, Table, entry, single
from kernel.workflows import Workflow


def _run_create(cmd: RunCreate) -> Phase[RunCreateResult]:
    return single(
        lambda reads: reads.registry.get_workflow(cmd.workflow_id, cmd.version),
        lambda workflow, env: run_create.decide(cmd, workflow, env),
    )


def _run_claim_pending(cmd: RunClaimPending) -> Phase[RunClaimPendingResult]:
    def load(reads: Reads) -> run_claim_pending.Claimable:
        return claims.claimable(reads, cmd.max_claims)

    return single(load, lambda state, env: run_claim_pending.decide(cmd, state, env))


def _run_transition(cmd: RunTransition) -> Phase[RunTransitionResult]:
    return single(
        lambda reads: reads.stage_state(cmd.workflow_run_id),
        lambda state, env: run_transition.decide(cmd, state, env),
    )


def _run_cancel(cmd: RunCancel) -> Phase[RunCancelResult]:
    def load(reads: Reads) -> run_cancel.Cancellable:
        run = reads.tx.get_run(cmd.workflow_run_id)
        if run is None:
            return run_cancel.Cancellable(None, [], [])
        return run_cancel.Cancellable(
            run, reads.tx.get_stages(run.id), reads.tx.get_jobs(run.id), reads.workflow_of(run)
        )

    return single(load, lambda state, env: run_cancel.decide(cmd, state, env))


def _run_rerun_from(cmd: RunRerunFrom) -> Phase[RunRerunFromResult]:
    def load(reads: Reads) -> tuple[StageState, Workflow[Any, Any] | None]:
        state = reads.stage_state(cmd.workflow_run_id, group=0)
        if state.run is None:
            return state, None
        target = None
        if cmd.version is not None:
            target = reads.registry.get_workflow(state.run.workflow_id, cmd.version)
        # The outputs the rerun group's stages take as input (a limit's key reads them).
        workflow = state.workflow if cmd.version is None else target
        if workflow is not None and workflow.stage(cmd.from_stage_id) is not None:
            group = workflow.group_of(cmd.from_stage_id) - 1
            if group >= 1:
                outputs = reads.group_outputs(state.run.id, state.stages, group)
                state = evolve(state, group_outputs=outputs)
        return state, target

    return single(
        load, lambda loaded, env: run_rerun_from.decide(cmd, loaded[0], env, target=loaded[1])
    )


def _run_signal(cmd: RunSignal) -> Phase[RunSignalResult]:
    def load(reads: Reads) -> run_signal.Signalling:
        run = reads.tx.get_run(cmd.workflow_run_id)  # locked: finishes take turns with it
        if run is None:
            return run_signal.Signalling(None, [], [], {}, None)
        stages = reads.tx.get_stages(run.id)
        current = max((stage.execution_group for stage in stages), default=0)
        return run_signal.Signalling(
            run,
            stages,
            reads.tx.get_jobs(run.id),
            reads.group_outputs(run.id, stages, current) if current else {},
            reads.workflow_of(run),
        )

    return single(load, lambda state, env: run_signal.decide(cmd, state, env))


def _schedule_upsert(cmd: ScheduleUpsert) -> Phase[ScheduleUpsertResult]:
    return single(
        lambda reads: schedules.Upserting(
            reads.tx.get_schedule(cmd.schedule.id),
            reads.registry.get_workflow(cmd.schedule.workflow_id),
        ),
        lambda state, env: schedules.upsert(cmd, state, env),
    )


def _schedule_delete(cmd: ScheduleDelete) -> Phase[ScheduleDeleteResult]:
    return single(
        lambda reads: reads.tx.get_schedule(cmd.schedule_id),
        lambda existing, env: schedules.delete(cmd, existing),
    )


def _schedule_tick(cmd: ScheduleTick) -> Phase[ScheduleTickResult]:
    def load(reads: Reads) -> list[schedules.DueSchedule]:
        # Schedules of workflows this host does not know wait for a host that does.
        due = reads.tx.due_schedules(reads.now, cmd.max_fires, reads.known_workflow_ids())
        return [
            schedules.DueSchedule(
                record,
                reads.registry.get_workflow(record.workflow_id),
                reads.tx.get_run(record.last_run_id)
                if record.last_run_id is not None and record.overlap == "skip"
                else None,
            )
            for record in due
        ]

    return single(load, lambda due, env: schedules.tick(cmd, due, env))


def _lease_reap_stale(cmd: LeaseReapStale) -> Phase[LeaseReapStaleResult]:
    def load(reads: Reads) -> lease_reap_stale.Stale:
        cutoff = reads.now - timedelta(milliseconds=cmd.stale_threshold_ms)
        jobs = reads.tx.stale_jobs(cutoff, cmd.max_jobs)
        # Sorted, so concurrent reapers lock runs in one order and cannot deadlock.
        run_ids = sorted({job.workflow_run_id for job in jobs})
        runs = {rid: run for rid in run_ids if (run := reads.tx.get_run(rid)) is not None}
        return lease_reap_stale.Stale(
            jobs,
            runs,
            {rid: reads.tx.get_stages(rid) for rid in runs},
            {rid: reads.workflow_of(run) for rid, run in runs.items()},
        )

    return single(load, lambda state, env: lease_reap_stale.decide(cmd, state, env))


def _lease_release(cmd: LeaseRelease) -> Phase[LeaseReleaseResult]:
    def load(reads: Reads) -> lease_release.Held:
        jobs = [job for job_id in cmd.job_ids if (job := reads.tx.get_job(job_id)) is not None]
        run_ids = sorted({job.workflow_run_id for job in jobs})
        return lease_release.Held(jobs, {rid: reads.tx.get_stages(rid) for rid in run_ids})

    return single(load, lambda state, env: lease_release.decide(cmd, state, env))


def _stage_report_progress(cmd: StageReportProgress) -> Phase[StageReportProgressResult]:
    def load(reads: Reads) -> stage_report_progress.Reporting:
        run = reads.tx.get_run(cmd.workflow_run_id)
        stages = reads.tx.get_stages(cmd.workflow_run_id) if run is not None else []
        return stage_report_progress.Reporting(run, stages)

    return single(load, lambda state, env: stage_report_progress.decide(cmd, state, env))


def _job_lease(cmd: JobLease) -> Phase[JobLeaseResult]:
    def load(reads: Reads) -> tuple[Job | None, Collection[tuple[str, str]]]:
        return reads.tx.get_job(cmd.job_id), reads.known_versions()

    return single(load, lambda loaded, env: start.lease_named(cmd, loaded[0], env, loaded[1]))


def _plugin_replay_dlq(cmd: PluginReplayDLQ) -> Phase[PluginReplayDLQResult]:
    return single(
        lambda reads: reads.tx.dead_letters(cmd.max_events),
        lambda dead, env: plugin_replay_dlq.decide(dead),
    )


def _usage_record(cmd: UsageRecord) -> Phase[UsageRecordResult]:
    def load(reads: Reads) -> usage_record.Recording:
        run = reads.tx.get_run(cmd.workflow_run_id)  # locked: finishes take turns with it
        if run is None:
            return usage_record.Recording(None, (), None)
        return usage_record.Recording(
            run, reads.tx.get_stages(run.id), reads.tx.get_usage_call(cmd.call_id)
        )

    return single(load, lambda state, env: usage_record.decide(cmd, state, env))


def _batch_intent(cmd: BatchIntent) -> Phase[BatchIntentResult]:
    def load(reads: Reads) -> batch_intent.Intending:
        run = reads.tx.get_run(cmd.workflow_run_id)  # locked: finishes take turns with it
        if run is None:
            return batch_intent.Intending(None, None, None)
        stages = reads.tx.get_stages(run.id)
        workflow = reads.workflow_of(run)
        return batch_intent.Intending(
            run,
            next((s for s in stages if s.stage_id == cmd.stage_id), None),
            workflow.stage(cmd.stage_id) if workflow is not None else None,
        )

    return single(load, lambda state, env: batch_intent.decide(cmd, state, env))


def _runs_purge(cmd: RunsPurge) -> Phase[RunsPurgeResult]:
    def load(reads: Reads) -> list[WorkflowRun]:
        # Locked: a worker's write to one of them waits; a concurrent purge skips them.
        return reads.tx.purgeable_runs(runs_purge.cutoff(cmd, reads.now), cmd.statuses, cmd.limit)

    return single(load, lambda runs, env: runs_purge.decide(cmd, runs, env))


TABLE = Table(
    entry(RunCreate, RunCreateResult, _run_create),
    entry(RunClaimPending, RunClaimPendingResult, _run_claim_pending),
    entry(RunTransition, RunTransitionResult, _run_transition),
    entry(RunCancel, RunCancelResult, _run_cancel),
    entry(RunRerunFrom, RunRerunFromResult, _run_rerun_from),
    entry(RunSignal, RunSignalResult, _run_signal),
    entry(ScheduleUpsert, ScheduleUpsertResult, _schedule_upsert),
    entry(ScheduleDelete, ScheduleDeleteResult, _schedule_delete),
    entry(ScheduleTick, ScheduleTickResult, _schedule_tick),
    entry(JobExecute, JobExecuteResult, job_execute.begin),
    entry(StagePollSuspended, StagePollSuspendedResult, stage_poll_suspended.begin),
    entry(StageReportProgress, StageReportProgressResult, _stage_report_progress),
    entry(LeaseReapStale, LeaseReapStaleResult, _lease_reap_stale),
    entry(LeaseRelease, LeaseReleaseResult, _lease_release),
    entry(JobLease, JobLeaseResult, _job_lease),
    entry(OutboxFlush, OutboxFlushResult, outbox_flush.begin),
    entry(PluginReplayDLQ, PluginReplayDLQResult, _plugin_replay_dlq),
    entry(UsageRecord, UsageRecordResult, _usage_record),
    entry(BatchIntent, BatchIntentResult, _batch_intent),
    entry(BatchCancelPending, BatchCancelPendingResult, batch_cancel.begin),
    entry(RunsPurge, RunsPurgeResult, _runs_purge),
)
"""Every command the kernel dispatches."""

__all__ = ["TABLE"]
