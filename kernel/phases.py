"""Commands that run user code or I/O between transactions.

``job.execute``: start (one transaction) → user code (no transaction, no
connection held) → finish (one transaction). ``stage.pollSuspended``: claim
due stages → ``check_completion`` outside any transaction → one transaction
per checked stage. ``outbox.flush``: claim events → publish → record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from attrs import evolve, frozen
from returns.result import Failure, Result, Success

from kernel.commands import (
    JobExecute,
    JobExecuteResult,
    OutboxFlush,
    OutboxFlushResult,
    StagePollSuspended,
    StagePollSuspendedResult,
)
from kernel.convert import to_json
from kernel.decisions import job_finish, job_start, outbox, poll
from kernel.decisions.env import OUTBOX_CLAIM_LEASE, Env
from kernel.decisions.groups import fail_run, output_key
from kernel.decisions.outcomes import (
    CheckOutcome,
    Failed,
    StageOutcome,
    interpret_check,
    interpret_return,
    typed_input_and_config,
)
from kernel.effects import Decision, ExecuteStage, StoreEffect, UpdateJob
from kernel.errors import KernelError
from kernel.events import event_from_payload
from kernel.ports import Raised, Returned, StoreTransaction
from kernel.records import Job, Json, OutboxEvent, WorkflowRun, WorkflowStage
from kernel.services import StoreStageServices
from kernel.stages import ProgressReport, Stage, StageContext
from kernel.status import JobStatus, Status
from kernel.workflows import Workflow

if TYPE_CHECKING:
    from kernel.dispatch import Finalize, Kernel


def _none(_: Any) -> Sequence[StoreEffect]:
    return ()


@frozen
class Leased:
    """A job leased and started (or settled without running) by one transaction."""

    cmd: JobExecute
    job: Job
    plan: job_start.JobStart


class Phases:
    """The multi-phase commands of one :class:`~kernel.dispatch.Kernel`."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    # -- loading helpers -------------------------------------------------------

    def latest_outputs(
        self, tx: StoreTransaction, run_id: str, stages: Sequence[WorkflowStage]
    ) -> dict[str, Json]:
        """Outputs of the completed stages of the run's latest group (for completion)."""
        if not stages or any(stage.is_active for stage in stages):
            return {}
        latest = max(stage.execution_group for stage in stages)
        return self._outputs(tx, run_id, stages, latest)

    def _outputs(
        self, tx: StoreTransaction, run_id: str, stages: Sequence[WorkflowStage], group: int
    ) -> dict[str, Json]:
        """Stored outputs of the completed stages of execution group ``group``."""
        outputs: dict[str, Json] = {}
        for stage in stages:
            if stage.execution_group == group and stage.status == Status.COMPLETED:
                found, value = tx.get_blob(output_key(run_id, stage.stage_id))
                if found:
                    outputs[stage.stage_id] = value
        return outputs

    # -- job.execute -----------------------------------------------------------

    def _start_step(
        self,
        tx: StoreTransaction,
        env: Env,
        cmd: JobExecute,
        job: Job | None,
        run: WorkflowRun | None = None,
    ) -> Result[Decision[job_start.JobStart], KernelError]:
        if run is None:
            run = tx.get_run(cmd.workflow_run_id)
        workflow = self.k.registry.get_workflow(cmd.workflow_id)
        stages = tx.get_stages(cmd.workflow_run_id) if run else []
        record = next((s for s in stages if s.stage_id == cmd.stage_id), None)
        if job is None and cmd.job_id is not None:
            job = tx.get_job(cmd.job_id)
        previous: dict[str, Json] = {}
        if run is not None and workflow is not None and workflow.stage(cmd.stage_id):
            group = workflow.group_of(cmd.stage_id)
            if group > 1:
                previous = self._outputs(tx, run.id, stages, group - 1)
        return job_start.decide(cmd, run, record, job, workflow, previous, env)

    def job_execute(self, cmd: JobExecute, finalize: Finalize) -> JobExecuteResult:
        plan = self.k.transact(
            lambda tx, env: self._start_step(tx, env, cmd, None),
            lambda start: finalize(start.skipped) if start.skipped else (),
        )
        if plan.execute is None:
            assert plan.skipped is not None
            return plan.skipped
        result, _ = self._run_and_finish(cmd, plan.execute, finalize, None)
        return result

    def _lease_step(
        self, tx: StoreTransaction, env: Env, worker_id: str
    ) -> Result[Decision[Leased | None], KernelError]:
        """Lease the next job and start it in the same transaction."""
        job = tx.lease_next_job(worker_id, env.now)
        if job is None:
            return Success(Decision(None))
        run = tx.get_run(job.workflow_run_id)
        cmd = JobExecute(
            workflow_run_id=job.workflow_run_id,
            workflow_id=job.workflow_id,
            stage_id=job.stage_id,
            config=run.config if run else {},
            job_id=job.id,
        )
        match self._start_step(tx, env, cmd, job, run):
            case Failure(error):
                # A job nobody here can start must not spin in the queue.
                started = self._reject(job, error, tx, env)
            case Success(started):
                pass
        return Success(Decision(Leased(cmd, job, started.result), started.effects))

    def execute_jobs(
        self,
        worker_id: str,
        max_jobs: int,
        on_start: Callable[[Job], None] | None = None,
        on_finish: Callable[[Job, JobExecuteResult], None] | None = None,
        keep_going: Callable[[], bool] | None = None,
    ) -> list[tuple[Job, JobExecuteResult]]:
        """Execute up to ``max_jobs`` jobs one after another.

        The finish transaction of each job also leases and starts the next one,
        so a busy worker commits one write transaction per stage execution. The
        next job is leased only once the slot is free (no prefetch), and only
        if ``keep_going()`` (asked inside that transaction) still says so.
        ``on_finish(job, result)`` is called after each job's result commits.
        """
        done: list[tuple[Job, JobExecuteResult]] = []

        def record(job: Job, result: JobExecuteResult) -> None:
            done.append((job, result))
            if on_finish is not None:
                on_finish(job, result)

        def more() -> bool:
            return len(done) + 1 < max_jobs and (keep_going is None or keep_going())

        leased = self.k.transact(lambda tx, env: self._lease_step(tx, env, worker_id))
        while leased is not None:
            started = leased.plan.execute
            if started is None:
                assert leased.plan.skipped is not None
                record(leased.job, leased.plan.skipped)
                if len(done) >= max_jobs or (keep_going is not None and not keep_going()):
                    break
                leased = self.k.transact(lambda tx, env: self._lease_step(tx, env, worker_id))
                continue
            job = started.job or leased.job
            if on_start is not None:
                on_start(job)
            result, leased = self._run_and_finish(leased.cmd, started, _none, worker_id, more)
            record(job, result)
        return done

    def _reject(
        self, job: Job, error: KernelError, tx: StoreTransaction, env: Env
    ) -> Decision[job_start.JobStart]:
        message = f"{error.code}: {error}"
        effects: list[StoreEffect] = [
            UpdateJob(evolve(job, status=JobStatus.FAILED, last_error=message))
        ]
        run = tx.get_run(job.workflow_run_id)
        if run is not None and not run.is_terminal:
            effects += fail_run(run, message, env)[1]
        skipped = JobExecuteResult(outcome="failed", error=message)
        return Decision(job_start.JobStart(execute=None, skipped=skipped), tuple(effects))

    def _run_and_finish(
        self,
        cmd: JobExecute,
        started: ExecuteStage,
        finalize: Finalize,
        lease_next: str | None,
        lease_if: Callable[[], bool] = lambda: True,
    ) -> tuple[JobExecuteResult, Leased | None]:
        """Phases 2 and 3; with ``lease_next`` (a worker id) the finish transaction
        also leases and starts that worker's next job."""
        workflow = self.k.registry.get_workflow(cmd.workflow_id)
        assert workflow is not None  # the start decision checked it
        outcome, progress = self._execute(
            started, workflow.stage(cmd.stage_id), workflow.output_types
        )

        def finish(
            tx: StoreTransaction, env: Env
        ) -> Result[Decision[tuple[JobExecuteResult, Leased | None]], KernelError]:
            run = tx.get_run(cmd.workflow_run_id)
            stages = tx.get_stages(cmd.workflow_run_id)
            job = tx.get_job(started.job.id) if started.job else None
            outputs = self._outputs(tx, cmd.workflow_run_id, stages, started.stage.execution_group)
            decided = job_finish.decide(
                started, outcome, progress, run, stages, job, outputs, workflow, env
            )
            match decided:
                case Failure(error):
                    return Failure(error)
                case Success(finished):
                    pass
            if lease_next is None or not lease_if():
                return Success(Decision((finished.result, None), finished.effects))
            # The finish must be visible to the lease (its effects may enqueue the
            # very job leased next), so apply it first, in this same transaction.
            tx.apply(finished.effects)
            match self._lease_step(tx, self.k.env(), lease_next):
                case Failure(error):
                    return Failure(error)
                case Success(following):
                    return Success(Decision((finished.result, following.result), following.effects))
            raise AssertionError("unreachable")  # pragma: no cover

        return self.k.transact(finish, lambda pair: finalize(pair[0]))

    def _context(
        self, record: WorkflowStage, typed_input: Any, config: Any, types: dict[str, type[Any]]
    ) -> StageContext[Any, Any]:
        services = StoreStageServices(
            self.k.store, self.k.clock, self.k.ids, record.workflow_run_id, record.id
        )
        return StageContext(
            workflow_run_id=record.workflow_run_id,
            stage_id=record.stage_id,
            stage_name=record.stage_name,
            stage_number=record.stage_number,
            attempt=record.attempt,
            input=typed_input,
            config=config,
            # A copy: user code changing it in place must not reach a stored record
            # (the in-memory store hands out the records it keeps).
            resume_state=to_json(record.suspended_state),
            services=services,
            stage_types=types,
        )

    def _execute(
        self,
        started: ExecuteStage,
        stage: Stage[Any, Any, Any] | None,
        types: dict[str, type[Any]],
    ) -> tuple[StageOutcome, list[ProgressReport]]:
        """Phase 2: run user code; no transaction is open and no connection is held."""
        assert stage is not None
        typed = typed_input_and_config(stage, started.input, started.config)
        if isinstance(typed, Failed):
            return typed, []
        typed_input, config = typed
        ctx = self._context(started.stage, typed_input, config, types)
        match self.k.runner.run(stage.execute, ctx):
            case Returned(value):
                return interpret_return(stage, value), ctx.progress_reports
            case Raised(error):
                return Failed(error), ctx.progress_reports
        raise AssertionError("unreachable")  # pragma: no cover

    # -- stage.pollSuspended ---------------------------------------------------

    def poll_suspended(
        self, cmd: StagePollSuspended, finalize: Finalize
    ) -> StagePollSuspendedResult:
        claimed = self.k.transact(
            lambda tx, env: poll.claim(tx.due_suspended_stages(env.now, cmd.max_checks), env)
        )
        verdicts = [(record.workflow_run_id, self._check_one(record)) for record in claimed]
        resumed = [run_id for run_id, verdict in verdicts if verdict == "resumed"]
        return StagePollSuspendedResult(
            checked=len(claimed),
            resumed=len(resumed),
            failed=sum(verdict == "failed" for _, verdict in verdicts),
            # Each run once, in the order it resumed: a host transitions it once.
            resumed_workflow_run_ids=list(dict.fromkeys(resumed)),
        )

    def _check_one(self, record: WorkflowStage) -> str:
        run = self.k.store.get_run(record.workflow_run_id)
        workflow = self.k.registry.get_workflow(run.workflow_id) if run else None
        stage = workflow.stage(record.stage_id) if workflow else None
        if run is None or workflow is None or stage is None or stage.check_completion is None:
            outcome: CheckOutcome = Failed(
                f"stage {record.stage_id!r} cannot be polled: its workflow or "
                "check_completion is not registered"
            )
        else:
            outcome = self._check(record, stage, run, workflow)

        def step(tx: StoreTransaction, env: Env) -> Result[Decision[poll.PollResult], KernelError]:
            current_run = tx.get_run(record.workflow_run_id)
            stages = tx.get_stages(record.workflow_run_id)
            jobs = [
                j
                for j in tx.get_jobs(record.workflow_run_id)
                if j.stage_id == record.stage_id and j.is_open
            ]
            outputs = self._outputs(tx, record.workflow_run_id, stages, record.execution_group)
            if workflow is None:
                return Success(Decision(poll.PollResult("skipped")))
            return poll.decide(
                record,
                outcome,
                current_run,
                stages,
                jobs[-1] if jobs else None,
                outputs,
                workflow,
                env,
            )

        return self.k.transact(step).verdict

    def _check(
        self,
        record: WorkflowStage,
        stage: Stage[Any, Any, Any],
        run: WorkflowRun,
        workflow: Workflow[Any, Any],
    ) -> CheckOutcome:
        """Run ``check_completion`` with the same typed input and config as ``execute``."""
        group = record.execution_group
        previous: dict[str, Json] = {}
        if group > 1:
            for earlier in workflow.group(group - 1):
                found, value = self.k.store.get_blob(output_key(run.id, earlier.id))
                if found:
                    previous[earlier.id] = value
        typed = typed_input_and_config(
            stage,
            job_start.stage_input(run, workflow, group, previous),
            {**stage.default_config(), **run.config.get(stage.id, {})},
        )
        if isinstance(typed, Failed):
            return typed
        typed_input, config = typed
        ctx = self._context(record, typed_input, config, workflow.output_types)
        assert stage.check_completion is not None
        match self.k.runner.run(stage.check_completion, ctx.resume_state, ctx):
            case Returned(value):
                return interpret_check(stage, value)
            case Raised(error):
                return Failed(error)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- outbox.flush ----------------------------------------------------------

    def outbox_flush(self, cmd: OutboxFlush, finalize: Finalize) -> OutboxFlushResult:
        claimed: list[OutboxEvent] = self.k.transact(
            lambda tx, env: Success(
                Decision(tx.claim_outbox(env.now, cmd.max_events, OUTBOX_CLAIM_LEASE))
            )
        )
        if not claimed:
            return OutboxFlushResult(published=0)
        outcomes: dict[str, str | None] = {}
        held: set[str] = set()
        for event in claimed:
            if event.workflow_run_id in held:
                continue
            try:
                self.k.sink.emit(event_from_payload(event.payload))
                outcomes[event.id] = None
            except Exception as exc:  # any sink failure is a failed delivery
                outcomes[event.id] = f"{type(exc).__name__}: {exc}"
                held.add(event.workflow_run_id)
        max_retries = int(getattr(self.k.sink, "max_retries", 3))
        return self.k.transact(lambda tx, env: outbox.settle(claimed, outcomes, max_retries, env))
