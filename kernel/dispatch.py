"""The ``Kernel``: load state, call one decision, apply its effects, retry on conflicts.

The shell decides nothing: every domain rule lives in :mod:`kernel.decisions`.
It owns the transactions, idempotency bookkeeping, optimistic-concurrency
retries, and the multi-phase commands (``job.execute``,
``stage.pollSuspended``, ``outbox.flush``) whose user code or I/O runs
outside any transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar, cast

import attrs
from returns.result import Failure, Result, Success

from kernel.commands import (
    COMMAND_RESULTS,
    Command,
    JobExecute,
    JobExecuteResult,
    LeaseReapStale,
    OutboxFlush,
    PluginReplayDLQ,
    RunCancel,
    RunClaimPending,
    RunCreate,
    RunRerunFrom,
    RunTransition,
    StagePollSuspended,
)
from kernel.convert import converter, fingerprint, to_json
from kernel.decisions import (
    outbox,
    reap,
    run_cancel,
    run_claim,
    run_create,
    run_rerun,
    run_transition,
)
from kernel.decisions.env import Env
from kernel.effects import CompleteIdempotency, Decision, ReleaseIdempotency, StoreEffect
from kernel.errors import (
    IdempotencyConflictError,
    IdempotencyInProgressError,
    KernelError,
    StaleVersionError,
)
from kernel.phases import Phases
from kernel.ports import (
    Clock,
    EventSink,
    IdGenerator,
    StageRunner,
    Store,
    StoreTransaction,
    WorkflowRegistry,
)
from kernel.records import IdempotencyRecord, Job
from kernel.status import JobStatus

R = TypeVar("R")
T = TypeVar("T")

Finalize = Callable[[Any], Sequence[StoreEffect]]
"""Extra effects for a command's last transaction, given its result (idempotency)."""

IDEMPOTENCY_TIMEOUT = timedelta(hours=1)
"""After this long an IN_PROGRESS idempotency key is taken to belong to a crashed
caller, and the same command with the same payload may take it over."""

MAX_STALE_RETRIES = 8
"""How often the shell re-loads and re-decides after a ``StaleVersionError``."""


def _no_extra(_: Any) -> Sequence[StoreEffect]:
    return ()


class Kernel:
    """Dispatches commands: ``kernel.dispatch(RunCreate(...))`` returns ``RunCreateResult``.

    Every port is passed in explicitly; ``adapters.create_kernel`` and
    ``testing.create_test_kernel`` wire the usual ones.
    """

    def __init__(
        self,
        *,
        registry: WorkflowRegistry,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        sink: EventSink,
        runner: StageRunner,
        idempotency_timeout: timedelta = IDEMPOTENCY_TIMEOUT,
    ) -> None:
        self.registry = registry
        self.idempotency_timeout = idempotency_timeout
        self.store = store
        self.clock = clock
        self.ids = ids
        self.sink = sink
        self.runner = runner
        self._phases = Phases(self)
        self._handlers: dict[str, Callable[[Any, Finalize], Any]] = {
            RunCreate.type: self._run_create,
            RunClaimPending.type: self._run_claim,
            RunTransition.type: self._run_transition,
            RunCancel.type: self._run_cancel,
            RunRerunFrom.type: self._run_rerun,
            JobExecute.type: self._phases.job_execute,
            StagePollSuspended.type: self._phases.poll_suspended,
            LeaseReapStale.type: self._lease_reap,
            OutboxFlush.type: self._phases.outbox_flush,
            PluginReplayDLQ.type: self._replay_dlq,
        }

    # -- public ----------------------------------------------------------------

    def dispatch(self, cmd: Command[R]) -> R:
        """Run one command and return its typed result.

        Raises:
            KernelError: a subclass naming what was wrong; nothing was written.
        """
        handler = self._handlers.get(getattr(cmd, "type", ""))
        if handler is None:
            raise TypeError(f"dispatch: expected a command, got {cmd!r}")
        key = getattr(cmd, "idempotency_key", None)
        if key is None:
            result: R = handler(cmd, _no_extra)
            return result
        return self._idempotent(cmd, key, handler)

    def execute_next_job(
        self, worker_id: str, on_start: Callable[[Job], None] | None = None
    ) -> tuple[Job, JobExecuteResult] | None:
        """Lease the next available job and execute it, the lease taken in the
        start transaction (one write transaction fewer than dequeue + ``job.execute``).

        ``on_start(job)`` is called after the start transaction commits and
        before user code runs: hosts use it to learn which job to keep leased
        while the stage runs. If it raises, the exception propagates, no user
        code runs, and the job stays leased (the caller or the reaper releases it).

        Returns ``None`` when no job is available.
        """
        done = self._phases.execute_jobs(worker_id, 1, on_start)
        return done[0] if done else None

    def execute_jobs(
        self,
        worker_id: str,
        max_jobs: int = 100,
        on_start: Callable[[Job], None] | None = None,
        *,
        on_finish: Callable[[Job, JobExecuteResult], None] | None = None,
        keep_going: Callable[[], bool] | None = None,
    ) -> list[tuple[Job, JobExecuteResult]]:
        """Execute available jobs one after another, up to ``max_jobs``.

        Each finish transaction also leases and starts the next job, so a busy
        worker commits one write transaction per stage execution. Returns the
        jobs executed (or settled without running), in order; empty when idle.

        Args:
            on_start: called with each job after its start commits, before its
                user code runs (hosts renew that job's lease).
            on_finish: called with each job and its result after the result commits.
            keep_going: asked inside each finish transaction before the next job
                is leased; ``False`` ends the chain there (a host that is stopping).
                A finish retried after a version conflict asks again. The first
                lease of a call is not asked about: do not call when stopping.
        """
        if max_jobs < 1:
            raise ValueError(f"max_jobs: expected an int >= 1, got {max_jobs!r}")
        return self._phases.execute_jobs(worker_id, max_jobs, on_start, on_finish, keep_going)

    # -- plumbing --------------------------------------------------------------

    def env(self) -> Env:
        """Time, ids and a causation id for one decision."""
        return Env(now=self.clock.now(), new_id=self.ids.new_id, causation_id=self.ids.new_id())

    def transact(
        self,
        step: Callable[[StoreTransaction, Env], Result[Decision[T], KernelError]],
        finalize: Finalize = _no_extra,
    ) -> T:
        """Load and decide inside one transaction and apply the effects there.

        A ``StaleVersionError`` rolls the transaction back; the step is loaded and
        decided again, up to ``MAX_STALE_RETRIES`` times.
        """
        for attempt in range(MAX_STALE_RETRIES):
            try:
                with self.store.transaction() as tx:
                    # The time is read once the write lock is held, so events of
                    # one run carry timestamps in their sequence order.
                    env = self.env()
                    match step(tx, env):
                        case Failure(error):
                            raise error
                        case Success(decision):
                            tx.apply((*decision.effects, *finalize(decision.result)))
                            result: T = decision.result
                            return result
            except StaleVersionError:
                if attempt == MAX_STALE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _idempotent(self, cmd: Command[R], key: str, handler: Callable[[Any, Finalize], R]) -> R:
        # The payload digest leaves the key out: the key names the request, the
        # rest of the payload is what must match on a replay. Fields are converted
        # by their runtime values, not their declared types, so a malformed field
        # reaches the decision and its validation error instead of crashing here.
        payload = {
            field.name: to_json(getattr(cmd, field.name))
            for field in attrs.fields(cast("type[attrs.AttrsInstance]", type(cmd)))
            if field.name != "idempotency_key"
        }
        digest = fingerprint(payload)
        claim = IdempotencyRecord(
            key=key,
            command_type=cmd.type,
            state="IN_PROGRESS",
            fingerprint=digest,
            created_at=self.clock.now(),
        )
        with self.store.transaction() as tx:
            existing = tx.acquire_idempotency(claim)
            if (
                existing is not None
                and existing.state == "IN_PROGRESS"
                and existing.fingerprint == digest
                and existing.created_at <= claim.created_at - self.idempotency_timeout
            ):
                # Its holder died mid-command (a finished or failed command
                # completes or releases its key): take the key over. Stores lock
                # the key's row while this transaction reads it, so only one
                # caller can take it.
                tx.apply((CompleteIdempotency(claim),))
                existing = None
        if existing is not None:
            if existing.fingerprint != digest:
                raise IdempotencyConflictError(key, cmd.type)
            if existing.state == "IN_PROGRESS":
                raise IdempotencyInProgressError(key, cmd.type)
            cached: R = converter.structure(existing.result, COMMAND_RESULTS[cmd.type])
            return cached

        def complete(result: Any) -> Sequence[StoreEffect]:
            done = IdempotencyRecord(
                key=key,
                command_type=cmd.type,
                state="COMPLETED",
                fingerprint=digest,
                result=to_json(result),
                created_at=claim.created_at,
            )
            return (CompleteIdempotency(done),)

        try:
            return handler(cmd, complete)
        except BaseException:
            # A command that failed releases its key (SPEC §6.3).
            with self.store.transaction() as tx:
                tx.apply((ReleaseIdempotency(key, cmd.type),))
            raise

    # -- single-transaction commands ------------------------------------------

    def _run_create(self, cmd: RunCreate, finalize: Finalize) -> Any:
        workflow = self.registry.get_workflow(cmd.workflow_id)
        return self.transact(lambda tx, env: run_create.decide(cmd, workflow, env), finalize)

    def _run_claim(self, cmd: RunClaimPending, finalize: Finalize) -> Any:
        def step(tx: StoreTransaction, env: Env) -> Any:
            runs = tx.pending_runs(cmd.max_claims)
            workflows = {
                run.workflow_id: self.registry.get_workflow(run.workflow_id) for run in runs
            }
            return run_claim.decide(cmd, runs, workflows, env)

        return self.transact(step, finalize)

    def _run_transition(self, cmd: RunTransition, finalize: Finalize) -> Any:
        def step(tx: StoreTransaction, env: Env) -> Any:
            run = tx.get_run(cmd.workflow_run_id)
            stages = tx.get_stages(cmd.workflow_run_id) if run else []
            workflow = self.registry.get_workflow(run.workflow_id) if run else None
            outputs = self._phases.latest_outputs(tx, cmd.workflow_run_id, stages)
            return run_transition.decide(cmd, run, stages, outputs, workflow, env)

        return self.transact(step, finalize)

    def _run_cancel(self, cmd: RunCancel, finalize: Finalize) -> Any:
        def step(tx: StoreTransaction, env: Env) -> Any:
            run = tx.get_run(cmd.workflow_run_id)
            stages = tx.get_stages(cmd.workflow_run_id) if run else []
            jobs = tx.get_jobs(cmd.workflow_run_id) if run else []
            return run_cancel.decide(cmd, run, stages, jobs, env)

        return self.transact(step, finalize)

    def _run_rerun(self, cmd: RunRerunFrom, finalize: Finalize) -> Any:
        def step(tx: StoreTransaction, env: Env) -> Any:
            run = tx.get_run(cmd.workflow_run_id)
            stages = tx.get_stages(cmd.workflow_run_id) if run else []
            workflow = self.registry.get_workflow(run.workflow_id) if run else None
            return run_rerun.decide(cmd, run, stages, workflow, env)

        return self.transact(step, finalize)

    def _lease_reap(self, cmd: LeaseReapStale, finalize: Finalize) -> Any:
        def step(tx: StoreTransaction, env: Env) -> Any:
            cutoff = env.now - timedelta(milliseconds=cmd.stale_threshold_ms)
            jobs = [j for j in tx.stale_jobs(cutoff, 100) if j.status == JobStatus.LEASED]
            # Sorted, so concurrent reapers lock runs in one order and cannot deadlock.
            run_ids = sorted({job.workflow_run_id for job in jobs})
            runs = {rid: run for rid in run_ids if (run := tx.get_run(rid)) is not None}
            stages = {rid: tx.get_stages(rid) for rid in run_ids}
            workflows = {
                job.workflow_id: self.registry.get_workflow(job.workflow_id) for job in jobs
            }
            return reap.decide(cmd, jobs, runs, stages, workflows, env)

        return self.transact(step, finalize)

    def _replay_dlq(self, cmd: PluginReplayDLQ, finalize: Finalize) -> Any:
        return self.transact(
            lambda tx, env: outbox.replay(tx.dead_letters(cmd.max_events)), finalize
        )
