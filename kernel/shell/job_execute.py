"""``job.execute``: start (one transaction), the stage's code (outside), finish (one
transaction); and the worker's loop that leases each next job in the previous
job's finish transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from attrs import evolve, frozen
from returns.result import Result, Success

from kernel.commands import JobExecute, JobExecuteResult
from kernel.decisions.context import Env
from kernel.decisions.job_execute import finish, start
from kernel.decisions.lifecycle import StageState
from kernel.effects import Decision, ExecuteStage
from kernel.errors import KernelError
from kernel.outcomes import AwaitSignal, StageRun
from kernel.records import Job, WorkflowRun
from kernel.shell.reads import Reads
from kernel.shell.steps import Done, Outside, Phase, Step, Transaction, Within

R = TypeVar("R")


def _start_state(
    reads: Reads, cmd: JobExecute, job: Job | None, run: WorkflowRun | None = None
) -> start.StartState:
    if run is None:
        run = reads.tx.get_run(cmd.workflow_run_id)
    stages = reads.tx.get_stages(cmd.workflow_run_id) if run is not None else []
    record = next((s for s in stages if s.stage_id == cmd.stage_id), None)
    workflow = (
        reads.workflow_of(run)
        if run is not None and run.workflow_id == cmd.workflow_id
        else reads.registry.get_workflow(cmd.workflow_id)
    )
    previous = reads.previous_outputs(run, stages, cmd.stage_id)
    return start.StartState(run, record, job, workflow, previous)


def begin(cmd: JobExecute) -> Phase[JobExecuteResult]:
    """Phase 1: start the attempt, or skip a job with nothing to do."""

    def load(reads: Reads) -> start.StartState:
        job = reads.tx.get_job(cmd.job_id) if cmd.job_id is not None else None
        return _start_state(reads, cmd, job)

    def then(plan: start.JobStart) -> Step[JobExecuteResult]:
        if plan.execute is None:
            assert plan.skipped is not None
            return Done(plan.skipped)
        started = plan.execute
        return Outside(started, lambda ran: finishing(started, ran))

    return Transaction(load, lambda state, env: start.decide(cmd, state, env), then)


def finishing(started: ExecuteStage, ran: StageRun) -> Phase[JobExecuteResult]:
    """Phase 3: record what the attempt did, settle its job, transition its run."""

    return Transaction(
        lambda reads: _finish_state(reads, started, ran),
        lambda state, env: finish.decide(started, ran, state, env),
        Done,
    )


def _finish_state(reads: Reads, started: ExecuteStage, ran: StageRun) -> StageState:
    job = reads.tx.get_job(started.job.id) if started.job is not None else None
    state = reads.stage_state(started.run.id, group=started.stage.execution_group, job=job)
    if isinstance(ran.outcome, AwaitSignal) and state.run is not None:
        # Read after the run (locked on PostgreSQL): a concurrent run.signal either
        # committed its buffered signal already, or waits and then finds the stage waiting.
        return evolve(state, signals=tuple(reads.tx.buffered_signals(started.run.id)))
    return state


# -- the worker's loop -----------------------------------------------------------


@frozen
class Leased:
    """A job leased from the queue and started (or settled without running)."""

    job: Job
    plan: start.JobStart


def lease_next(worker_id: str, then: Callable[[Leased | None], Step[R]]) -> Phase[R]:
    """Lease the next available job and start it in the same transaction; ``None``
    when no job is available."""

    def load(reads: Reads) -> tuple[Job, start.StartState] | None:
        # Jobs of workflow versions this worker does not know stay QUEUED for one that does.
        job = reads.tx.lease_next_job(worker_id, reads.now, versions=reads.known_versions())
        if job is None:
            return None
        run = reads.tx.get_run(job.workflow_run_id)
        return job, _start_state(reads, start.command_for(job, run), job, run)

    def decide(
        loaded: tuple[Job, start.StartState] | None, env: Env
    ) -> Result[Decision[Leased | None], KernelError]:
        if loaded is None:
            return Success(Decision(None))
        job, state = loaded
        decided = start.start_leased(job, state, env)
        return decided.map(lambda d: Decision(Leased(job, d.result), d.effects))

    return Transaction(load, decide, then)


def finish_and_lease(
    started: ExecuteStage, ran: StageRun, worker_id: str, more: Callable[[], bool]
) -> Phase[tuple[JobExecuteResult, Leased | None]]:
    """Phase 3 of one job; if ``more()`` (asked inside the transaction) still says so,
    lease and start the worker's next job in the same transaction. The finish is
    applied first: it may enqueue the very job leased next."""

    def then(result: JobExecuteResult) -> Step[tuple[JobExecuteResult, Leased | None]]:
        if not more():
            return Done((result, None))
        return Within(lease_next(worker_id, lambda leased: Done((result, leased))))

    return Transaction(
        lambda reads: _finish_state(reads, started, ran),
        lambda state, env: finish.decide(started, ran, state, env),
        then,
    )
