"""``job.execute``: start (one transaction), the stage's code (outside), finish (one
transaction); and the worker's loop that leases each next job in the previous
job's finish transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from attrs import frozen
from returns.result import Result, Success

from kernel.commands import JobExecute, JobExecuteResult
from kernel.copying import evolve
from kernel.decisions.context import Env
from kernel.decisions.job_execute import finish, start
from kernel.decisions.lifecycle import StageState
from kernel.effects import Decision, ExecuteStage, StoreEffect
from kernel.errors import KernelError
from kernel.outcomes import AwaitSignal, StageRun
from kernel.records import Job, WorkflowStage
from kernel.shell.reads import Reads, RunRecords
from kernel.shell.steps import Done, Outside, Phase, Step, Transaction, Within

R = TypeVar("R")


def _start_state(
    reads: Reads, cmd: JobExecute, job: Job | None, records: RunRecords
) -> start.StartState:
    run, stages = records
    record = next((s for s in stages if s.stage_id == cmd.stage_id), None)
    workflow = (
        reads.workflow_of(run)
        if run is not None and run.workflow_id == cmd.workflow_id
        else reads.registry.get_workflow(cmd.workflow_id)
    )
    previous = reads.previous_outputs(run, stages, cmd.stage_id)
    return start.StartState(run, record, job, workflow, previous)


def _group_before(reads: Reads, job: Job) -> int:
    """The execution group whose outputs ``job``'s stage takes as input (0: none), read
    with the run. Only a hint: ``previous_outputs`` reads what it misses."""
    workflow = reads.registry.get_workflow(job.workflow_id, job.workflow_version)
    if workflow is None or workflow.stage(job.stage_id) is None:
        return 0
    return workflow.group_of(job.stage_id) - 1


def _carrying(plan: start.JobStart, stages: list[WorkflowStage]) -> start.JobStart:
    """``plan`` whose stage to execute carries the run's stage records as the start's
    effects leave them: those read, with the started record in place of its old one
    (or inserted where ``get_stages`` puts it). The start changes no other record (if
    it did, its version would differ, the finish's check would fail, and the finish
    would read the records afresh)."""
    started = plan.execute
    if started is None:
        return plan
    record = started.stage
    if any(stage.id == record.id for stage in stages):
        after = tuple(record if stage.id == record.id else stage for stage in stages)
    else:  # a new record: after those of its stage number or lower (get_stages' order)
        at = sum(1 for stage in stages if stage.stage_number <= record.stage_number)
        after = (*stages[:at], record, *stages[at:])
    return evolve(plan, execute=evolve(started, stages_read=after))


def begin(cmd: JobExecute) -> Phase[JobExecuteResult]:
    """Phase 1: start the attempt, or skip a job with nothing to do."""

    def load(reads: Reads) -> tuple[start.StartState, list[WorkflowStage]]:
        job = reads.tx.get_job(cmd.job_id) if cmd.job_id is not None else None
        group = _group_before(reads, job) if job is not None else 0
        records = reads.run_records(cmd.workflow_run_id, outputs_of=group)
        return _start_state(reads, cmd, job, records), records[1]

    def decide(
        loaded: tuple[start.StartState, list[WorkflowStage]], env: Env
    ) -> Result[Decision[start.JobStart], KernelError]:
        state, stages = loaded
        decided = start.decide(cmd, state, env)
        return decided.map(lambda d: Decision(_carrying(d.result, stages), d.effects))

    def then(plan: start.JobStart) -> Step[JobExecuteResult]:
        if plan.execute is None:
            assert plan.skipped is not None
            return Done(plan.skipped)
        started = plan.execute
        return Outside(started, lambda ran: finishing(started, ran))

    return Transaction(load, decide, then)


def finishing(started: ExecuteStage, ran: StageRun) -> Phase[JobExecuteResult]:
    """Phase 3: record what the attempt did, settle its job, transition its run."""

    return Transaction(
        lambda reads: _finish_state(reads, started, ran),
        lambda state, env: finish.decide(started, ran, state, env),
        Done,
    )


def _finish_state(
    reads: Reads, started: ExecuteStage, ran: StageRun, confirmed: bool | None = None
) -> StageState:
    """What the finish decides on: the records the start left, if the store confirms
    them current (then nothing is read again; ``confirmed``: what it said when
    asked for several finishes at once), or else the records read now."""
    job, carried = started.job, started.stages_read
    records: RunRecords | None = None
    if confirmed is None:
        confirmed = carried is not None and reads.unchanged(started.run, carried, job)
    if carried is not None and confirmed:
        records = (started.run, list(carried))
    elif job is not None:
        job = reads.tx.get_job(job.id)
    state = reads.stage_state(
        started.run.id, group=started.stage.execution_group, job=job, records=records
    )
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
    when no job is available (a group of one, see :func:`lease_up_to`)."""
    return lease_up_to(worker_id, 1, lambda leased: then(leased[0] if leased else None))


def finish_and_lease(
    started: ExecuteStage, ran: StageRun, worker_id: str, more: Callable[[], bool]
) -> Phase[tuple[JobExecuteResult, Leased | None]]:
    """Phase 3 of one job; if ``more()`` (asked inside the transaction) still says so,
    lease and start the worker's next job in the same transaction. The finish is
    applied first: it may enqueue the very job leased next."""

    def then(results: Results) -> Step[tuple[JobExecuteResult, Leased | None]]:
        if not more():
            return Done((results[0], None))
        return Within(
            lease_next(
                worker_id,
                lambda leased: Done((_left(results, (leased,) if leased else ())[0], leased)),
            )
        )

    return finish_all(((started, ran),), then)


# -- groups: several jobs per transaction -------------------------------------------


Starting = tuple[Job, start.StartState, list[WorkflowStage]]
"""A leased job, what its start decides on, and its run's stage records."""


def lease_up_to(worker_id: str, n: int, then: Callable[[tuple[Leased, ...]], Step[R]]) -> Phase[R]:
    """Lease up to ``n`` jobs and start them, in one transaction; ``then`` gets those
    leased, maybe none.

    The leases come first (each lease only chooses and marks a queued job), then
    the starts of the jobs of distinct runs, decided together on their runs read
    at once (a start changes only its own run's records), then each further job
    of a run started here, one phase each (it sees the starts before it).
    """

    def load(reads: Reads) -> tuple[list[Starting], list[Job]]:
        jobs = reads.lease_jobs(worker_id, n)
        runs: set[str] = set()
        first: list[Job] = []
        later: list[Job] = []
        for job in jobs:
            (later if job.workflow_run_id in runs else first).append(job)
            runs.add(job.workflow_run_id)
        # Runs read in the order of their ids (see finish_together); the jobs stay in
        # lease order.
        by_run = sorted(first, key=lambda job: job.workflow_run_id)
        requests = [(job.workflow_run_id, _group_before(reads, job)) for job in by_run]
        found = dict(zip((job.id for job in by_run), reads.runs_records(requests), strict=True))
        return [_starting(reads, job, found[job.id]) for job in first], later

    def decide(
        loaded: tuple[list[Starting], list[Job]], env: Env
    ) -> Result[Decision[tuple[tuple[Leased, ...], list[Job]]], KernelError]:
        states, later = loaded
        return _each_decided(states, _start, env).map(
            lambda made: Decision((made.result, later), made.effects)
        )

    def after(result: tuple[tuple[Leased, ...], list[Job]]) -> Step[R]:
        leased, later = result
        if not later:
            return then(leased)
        return Within(start_each(tuple(later), lambda more: then((*leased, *more))))

    return Transaction(load, decide, after)


def start_each(
    jobs: tuple[Job, ...],
    then: Callable[[tuple[Leased, ...]], Step[R]],
    got: tuple[Leased, ...] = (),
) -> Phase[R]:
    """Start each of ``jobs`` (leased in this transaction), one phase each."""
    job = jobs[len(got)]

    def load(reads: Reads) -> Starting:
        records = reads.run_records(job.workflow_run_id, outputs_of=_group_before(reads, job))
        return _starting(reads, job, records)

    def after(leased: Leased) -> Step[R]:
        have = (*got, leased)
        if len(have) == len(jobs):
            return then(have)
        return Within(start_each(jobs, then, have))

    return Transaction(load, _start, after)


def _starting(reads: Reads, job: Job, records: RunRecords) -> Starting:
    """What the start of leased ``job`` decides on, its run's records read."""
    return job, _start_state(reads, start.command_for(job, records[0]), job, records), records[1]


def _start(starting: Starting, env: Env) -> Result[Decision[Leased], KernelError]:
    """Start a leased job (or settle it without running)."""
    job, state, stages = starting
    decided = start.start_leased(job, state, env)
    return decided.map(lambda d: Decision(Leased(job, _carrying(d.result, stages)), d.effects))


Ran = tuple[ExecuteStage, StageRun]
"""A started attempt and what its user code did."""

Results = tuple[JobExecuteResult, ...]


def finish_all(
    ran: tuple[Ran, ...],
    then: Callable[[tuple[JobExecuteResult, ...]], Step[R]],
    got: tuple[JobExecuteResult, ...] = (),
) -> Phase[R]:
    """Phase 3 of each of ``ran`` (at least one), in order, in one transaction;
    ``then`` gets their results."""
    started, outcome = ran[len(got)]

    def after(result: JobExecuteResult) -> Step[R]:
        have = (*got, result)
        if len(have) == len(ran):
            return then(have)
        return Within(finish_all(ran, then, have))

    return Transaction(
        lambda reads: _finish_state(reads, started, outcome),
        lambda state, env: finish.decide(started, outcome, state, env),
        after,
    )


def finish_together(
    ran: tuple[Ran, ...], then: Callable[[tuple[JobExecuteResult, ...]], Step[R]]
) -> Phase[R]:
    """Phase 3 of each of ``ran`` as one phase: every load, then every decision, and
    their effects applied together (a store writes each kind of record with one
    statement). Only for attempts of distinct runs: a finish changes only its own
    run's records, so no load here depends on another finish's effects. Each
    decision has a causation id of its own, as if finished alone."""

    # Loaded in the order of their run ids: a store that locks each run it reads
    # (PostgreSQL) then takes the locks of any two groups in the same order.
    order = sorted(range(len(ran)), key=lambda index: ran[index][0].run.id)

    def load(reads: Reads) -> list[StageState]:
        asked = [(ran[i][0].run, ran[i][0].stages_read, ran[i][0].job) for i in order]
        confirmed = reads.unchanged_all(asked)
        states: dict[int, StageState] = {}
        for index, same in zip(order, confirmed, strict=True):
            started, outcome = ran[index]
            states[index] = _finish_state(reads, started, outcome, same)
        return [states[index] for index in range(len(ran))]

    def decide(states: list[StageState], env: Env) -> Result[Decision[Results], KernelError]:
        def one(index: int, own: Env) -> Result[Decision[JobExecuteResult], KernelError]:
            started, outcome = ran[index]
            return finish.decide(started, outcome, states[index], own)

        return _each_decided(list(range(len(ran))), one, env)

    return Transaction(load, decide, then)


def finish_all_and_lease(
    ran: tuple[Ran, ...], worker_id: str, how_many: Callable[[], int]
) -> Phase[tuple[tuple[JobExecuteResult, ...], tuple[Leased, ...]]]:
    """Finish every attempt of ``ran`` (together when their runs are distinct, else
    one after another); then lease and start ``how_many()`` (asked inside the
    transaction, after the finishes) more jobs in the same transaction."""

    def then(
        results: tuple[JobExecuteResult, ...],
    ) -> Step[tuple[tuple[JobExecuteResult, ...], tuple[Leased, ...]]]:
        wanted = how_many()
        if wanted < 1:
            return Done((results, ()))
        return Within(
            lease_up_to(worker_id, wanted, lambda leased: Done((_left(results, leased), leased)))
        )

    runs = {started.run.id for started, _ in ran}
    if len(ran) > 1 and len(runs) == len(ran):
        return finish_together(ran, then)
    return finish_all(ran, then)


def _left(results: Results, leased: tuple[Leased, ...]) -> Results:
    """``results`` without the jobs their transaction leased after queueing them."""
    taken = {item.job.id for item in leased}
    if not taken or not any(result.queued_jobs for result in results):
        return results
    return tuple(
        evolve(result, queued_jobs=tuple(job for job in result.queued_jobs if job not in taken))
        if result.queued_jobs
        else result
        for result in results
    )


T = TypeVar("T")
U = TypeVar("U")


def _each_decided(
    items: Sequence[T],
    decide: Callable[[T, Env], Result[Decision[U], KernelError]],
    env: Env,
) -> Result[Decision[tuple[U, ...]], KernelError]:
    """``decide`` each of ``items``, as if each were decided alone (each but the first
    with a causation id of its own): their results in order and all their effects,
    or the first failure."""
    results: list[U] = []
    effects: list[StoreEffect] = []
    for index, item in enumerate(items):
        own = env if index == 0 else evolve(env, causation_id=env.new_id())
        match decide(item, own):
            case Success(decided):
                made: Decision[U] = decided
                results.append(made.result)
                effects.extend(made.effects)
            case failed:
                return cast("Result[Decision[tuple[U, ...]], KernelError]", failed)
    return Success(Decision(tuple(results), tuple(effects)))
