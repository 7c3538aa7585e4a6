"""What must hold after every step of a simulation, and at its end (SPEC §17).

:class:`Checker` reads the committed changes of one step (with the records they
replaced) and the store's tables, and returns the first violated invariant as a
readable message, or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from kernel.effects import (
    AppendOutbox,
    DeleteStage,
    EnqueueJob,
    InsertRun,
    InsertUsage,
    UpdateJob,
    UpdateOutbox,
    UpdateRun,
    UpdateStage,
)
from kernel.ports import Clock
from kernel.records import Job, OutboxEvent, WorkflowRun, WorkflowStage
from kernel.status import RUN_TERMINAL, JobStatus, Status, can_run_move, can_stage_move
from kernel.workflows import Workflow
from testing.simulate.feature_checks import FeatureChecks
from testing.simulate.providers import ProviderFaults
from testing.simulate.store import Change, SimStore
from testing.simulate.violation import Violation
from testing.simulate.worker import VirtualWorker

SERVERLESS = "fn"
"""The serverless function's worker id (:mod:`testing.simulate.client`)."""

Predicate = Callable[[Any], None]
"""A user invariant: given the store, raises ``AssertionError`` when violated."""

JOB_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class Checker:
    """Checks the invariants after each step; remembers what it needs across steps."""

    def __init__(
        self,
        store: SimStore,
        names: dict[str, str],
        predicates: Sequence[Predicate],
        *,
        delivered: Mapping[str, int],
        clock: Clock,
        stale_threshold: timedelta,
        workflows: Mapping[str, Workflow[Any, Any]],
        providers: ProviderFaults,
        start: datetime,
        watch: bool = False,
    ) -> None:
        self.store = store
        self.delivered = delivered
        """How many events of each run the sink took."""
        self.clock = clock
        self.stale_threshold = stale_threshold
        self.names = names
        """Run id → the trace's name for it (``r3``): the client-side ledger of creates."""
        self.predicates = predicates
        self.completions: dict[tuple[str, str], int] = {}
        self._unfinished: tuple[int, str | None] | None = None
        """:meth:`unfinished` as of the step counted: it changes only with the store."""
        self._steps_changed = 0
        self._names_seen = 0
        self.call_ids: set[str] = set()
        self.events: dict[str, list[str]] = {}
        """Run id → its outbox events' ids, in append order (an index: no scans)."""
        self.jobs: dict[str, list[str]] = {}
        """Run id → its jobs' ids, in enqueue order."""
        self.reopened: set[str] = set()
        """Runs a ``run.rerunFrom`` of this step moved from terminal back to running."""
        self.features = FeatureChecks(
            store, workflows, self.run_name, self.call_ids, providers, start, watch=watch
        )
        """Signals, schedules and provider calls (:mod:`testing.simulate.feature_checks`)."""

    def run_name(self, run_id: str) -> str:
        return f"{self.names.get(run_id, '?')} ({run_id})"

    def after_step(self, changes: Sequence[Change], workers: Iterable[VirtualWorker]) -> None:
        """Raise :class:`Violation` for the first invariant this step broke."""
        tables = self.store.tables
        if self.store.leftovers:
            raise Violation(
                f"a failed write leaves nothing behind: {'; '.join(self.store.leftovers)}"
            )
        for run_id in self.names:
            if run_id not in tables.runs:
                raise Violation(f"no run lost: run {self.run_name(run_id)} was created but is gone")
        if changes or len(self.names) != self._names_seen:
            self._steps_changed += 1
            self._names_seen = len(self.names)
        touched: dict[str, None] = {}
        for change in changes:
            touched_run = self._check_change(change)
            if touched_run is not None:
                touched[touched_run] = None
        for run_id in touched:
            self._check_agreement(run_id)
        if self.features.active:
            self.features.after_step(changes)
        self._check_workers(list(workers))
        self.reopened.clear()
        for predicate in self.predicates:
            try:
                predicate(self.store)
            except AssertionError as exc:
                name = getattr(predicate, "__name__", repr(predicate))
                raise Violation(f"user invariant {name}: {exc}") from None

    # -- one committed effect ------------------------------------------------------------

    def _check_change(self, change: Change) -> str | None:
        match change.effect:
            case InsertRun(run):
                return run.id
            case UpdateRun(run) if isinstance(change.before, WorkflowRun):
                self._run_move(change.before, run)
                return run.id
            case UpdateStage(stage) if isinstance(change.before, WorkflowStage):
                before = change.before
                if before.status != stage.status and not can_stage_move(
                    before.status, stage.status
                ):
                    raise Violation(
                        f"status moves follow kernel/status.py: stage {stage.stage_id!r} of run "
                        f"{self.run_name(stage.workflow_run_id)} moved "
                        f"{before.status} -> {stage.status}"
                    )
                return stage.workflow_run_id
            case UpdateJob(job) if isinstance(change.before, Job):
                before_job = change.before
                if before_job.status in JOB_TERMINAL and job.status != before_job.status:
                    raise Violation(
                        f"a finished job never reopens: job {job.id} ({job.stage_id!r} of run "
                        f"{self.run_name(job.workflow_run_id)}) moved "
                        f"{before_job.status} -> {job.status}"
                    )
                self._lease_move(before_job, job)
                return job.workflow_run_id
            case DeleteStage(stage):
                self.completions.pop((stage.workflow_run_id, stage.stage_id), None)
                return stage.workflow_run_id
            case EnqueueJob(job):
                self.jobs.setdefault(job.workflow_run_id, []).append(job.id)
                return job.workflow_run_id
            case AppendOutbox(event, event_id):
                run_id = event.workflow_run_id
                self.events.setdefault(run_id, []).append(event_id)
                if event.type == "stage:completed":
                    key = (run_id, str(getattr(event, "stage_id", "")))
                    self.completions[key] = self.completions.get(key, 0) + 1
                    if self.completions[key] > 1:
                        raise Violation(
                            f"one stage:completed per stage: stage {key[1]!r} of run "
                            f"{self.run_name(run_id)} completed {self.completions[key]} times"
                        )
                return run_id
            case UpdateOutbox(event) if event.published_at is not None:
                self._published_in_order(event.workflow_run_id, event.sequence)
            case InsertUsage(entry):
                if entry.call_id in self.call_ids:
                    raise Violation(f"usage recorded once per call id: {entry.call_id!r} twice")
                self.call_ids.add(entry.call_id)
        return None

    def _run_move(self, before: WorkflowRun, run: WorkflowRun) -> None:
        name = self.run_name(run.id)
        if run.id in self.reopened and before.status in RUN_TERMINAL:
            return  # a rerun: the run starts again from a stage (SPEC §5.5)
        if before.status in RUN_TERMINAL and (
            (run.status, run.output, run.error) != (before.status, before.output, before.error)
        ):
            raise Violation(
                f"a terminal run never changes: run {name} was {before.status}, "
                f"now {run.status} (output {run.output!r}, error {run.error!r})"
            )
        if before.status != run.status and not can_run_move(before.status, run.status):
            raise Violation(
                f"status moves follow kernel/status.py: run {name} moved "
                f"{before.status} -> {run.status}"
            )

    def _published_in_order(self, run_id: str, sequence: int) -> None:
        """Published in sequence order, and only what the sink took."""
        published = 0
        for other in self._events_of(run_id):
            published += other.published_at is not None
            if other.sequence < sequence and other.published_at is None and other.dlq_at is None:
                raise Violation(
                    f"outbox published in order: run {self.run_name(run_id)}'s event "
                    f"#{sequence} was published before #{other.sequence} ({other.event_type})"
                )
        if published > self.delivered.get(run_id, 0):
            raise Violation(
                f"an event is published only once the sink took it: run "
                f"{self.run_name(run_id)} has {published} events marked published, "
                f"the sink took {self.delivered.get(run_id, 0)}"
            )

    # -- one run, after the step -------------------------------------------------------------

    def _check_agreement(self, run_id: str) -> None:
        tables = self.store.tables
        run = tables.runs.get(run_id)
        if run is None:
            return
        name = self.run_name(run_id)
        sequences = sorted(event.sequence for event in self._events_of(run_id))
        if sequences != list(range(1, len(sequences) + 1)):
            raise Violation(f"outbox gap-free from 1: run {name} has sequences {sequences}")
        stages = tables.stages.get(run_id, {})
        jobs = tables.jobs
        for job in (jobs[job_id] for job_id in self.jobs.get(run_id, ()) if job_id in jobs):
            stage = stages.get(job.stage_id)
            if job.status == JobStatus.LEASED and not _leased_stage(job, stage):
                status = None if stage is None else stage.status
                raise Violation(
                    f"statuses agree: job {job.id} of run {name} is LEASED but its stage "
                    f"{job.stage_id!r} is {status}"
                )
        if run.status in RUN_TERMINAL and run.status != Status.CANCELLED:
            # A cancel leaves running stages to their workers (SPEC §5.4).
            active = [s.stage_id for s in stages.values() if s.status == Status.RUNNING]
            if active:
                raise Violation(f"statuses agree: run {name} is {run.status} but {active} run")
        elif run.status == Status.PENDING and stages:
            raise Violation(f"statuses agree: run {name} is PENDING but has stages")

    def _events_of(self, run_id: str) -> list[OutboxEvent]:
        """The run's outbox events (from the index of appends: no scan of the outbox)."""
        outbox = self.store.tables.outbox
        return [outbox[e] for e in self.events.get(run_id, ()) if e in outbox]

    def _check_workers(self, workers: list[VirtualWorker]) -> None:
        for worker in workers:
            if worker.broken:
                raise Violation(worker.broken[0])

    def _lease_move(self, before: Job, job: Job) -> None:
        """A lease is taken from its worker only once stale: never from a live worker."""
        if before.status != JobStatus.LEASED:
            return
        taken = job.reap_count > before.reap_count or (
            job.status == JobStatus.LEASED and job.worker_id != before.worker_id
        )
        if not taken or before.locked_at is None:
            return
        now = self.clock.now()
        if before.locked_at > now - self.stale_threshold:
            renewed = (now - before.locked_at).total_seconds()
            raise Violation(
                f"no job leased by two live workers: job {job.id} ({job.stage_id!r} of run "
                f"{self.run_name(job.workflow_run_id)}) was taken from {before.worker_id}, "
                f"whose lease was renewed {renewed:.3f}s ago"
                + (f", and given to {job.worker_id}" if job.status == JobStatus.LEASED else "")
            )

    # -- the end -----------------------------------------------------------------------------

    def unfinished(self) -> str | None:
        """Why the simulation is not done yet: a run not terminal, a job open, an event unsent."""
        if self._unfinished is not None and self._unfinished[0] == self._steps_changed:
            return self._unfinished[1]
        why = self._why_unfinished()
        self._unfinished = (self._steps_changed, why)
        return why

    def _why_unfinished(self) -> str | None:
        tables = self.store.tables
        for run_id in self.names:
            run = tables.runs[run_id]
            if run.status not in RUN_TERMINAL:
                return f"run {self.run_name(run_id)} is {run.status}"
        for job in tables.jobs.values():
            if job.status == JobStatus.LEASED:
                return f"job {job.id} of run {self.run_name(job.workflow_run_id)} is still leased"
        for event in tables.outbox.values():
            if event.published_at is None and event.dlq_at is None:
                return (
                    f"event #{event.sequence} ({event.event_type}) of run "
                    f"{self.run_name(event.workflow_run_id)} is unpublished"
                )
        return None


def _leased_stage(job: Job, stage: WorkflowStage | None) -> bool:
    """Whether a leased job's stage is as it must be: running, or (leased by a
    serverless message's ``job.lease``, not yet executed) still pending."""
    if stage is None:
        return False
    return stage.status == Status.RUNNING or (
        stage.status == Status.PENDING and job.worker_id == SERVERLESS
    )
