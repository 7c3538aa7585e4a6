"""The simulation's client and serverless function: what arrives from outside the workers.

The client creates runs (each ``run.create`` with an idempotency key, so a
create whose answer was lost, or that is delivered twice, may be sent
again), cancels runs and reruns finished ones from a stage, and sends signals
and upserts schedules (:mod:`testing.simulate.outside`). The serverless
function ``fn`` handles job queue messages as ``ServerlessHost.handle_job``
does: lease the named job (``job.lease``), then execute it (``job.execute``);
a message delivered twice must run the job at most once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from kernel.commands import JobExecute, JobLease, RunCancel, RunCreate, RunRerunFrom
from kernel.dispatch import Kernel
from kernel.effects import InsertRun
from kernel.errors import IdempotencyInProgressError, KernelError, StoreError
from kernel.status import RUN_TERMINAL, JobStatus
from testing.batch import SimulatedCrash
from testing.simulate.invariants import SERVERLESS
from testing.simulate.outside import KEYS, START, Outside
from testing.simulate.store import Change, SimStore
from testing.simulate.violation import Violation


def create_key(name: str, workflow_id: str, input: Any) -> str:
    data = json.dumps(input, sort_keys=True, separators=(",", ":"), default=str)
    return f"client create {name} {workflow_id} {data}"


class Client:
    """Sends the client's commands and the serverless function's messages."""

    def __init__(
        self,
        kernel: Kernel,
        store: SimStore,
        names: dict[str, str],
        reopened: set[str],
        outside: Outside,
    ) -> None:
        self.kernel = kernel
        self.outside = outside
        """Signals and schedules."""
        self.reopened = reopened
        """Where a rerun says which run it moves back from terminal (the checker's)."""
        self.store = store
        self.names = names
        """Run id → name (``r3``): the client's ledger of the runs it created."""
        self.sent: dict[str, tuple[str, Any]] = {}
        """Name → (workflow id, input) of each create sent, answered or not."""
        self.inserted: dict[str, list[str]] = {}
        """Name → the runs its creates inserted (more than one: a duplicate)."""
        self.messages: list[str] = []
        """Job queue messages not delivered yet (``r3/extract``), in arrival order."""
        self.step: Callable[[Sequence[Change]], None] | None = None
        """What the current step's changes must satisfy (``None``: nothing special)."""

    def by_name(self, name: str) -> str | None:
        return next((run_id for run_id, known in self.names.items() if known == name), None)

    # -- commands -----------------------------------------------------------------------

    def execute(self, words: list[str]) -> str | None:
        """Carry out ``client ...`` (without the word ``client``); ``None``: it cannot."""
        if words[0] in ("signal", "resignal", "schedule", "unschedule"):
            return self.outside.execute(words)
        run_id = self.by_name(words[1]) if len(words) > 1 else None
        match words:
            case ["create", name, workflow_id, data] if run_id is None:
                return self.create(name, workflow_id, json.loads(data))
        if run_id is None:
            return None
        match words:
            case ["resend", name] if name in self.sent:
                return self._resend(name)
            case ["cancel", _]:
                return self._refusable(lambda: self._cancel(run_id))
            case ["rerun", _, "from", stage_id]:
                return self._refusable(lambda: self._rerun(run_id, stage_id))
        return None

    def create(self, name: str, workflow_id: str, input: Any) -> str:
        self.sent[name] = (workflow_id, input)
        self.step = lambda changes: self._inserted_once(name, changes)
        command = RunCreate(workflow_id=workflow_id, input=input, idempotency_key=f"sim-{name}")
        try:
            created = self.kernel.dispatch(command)
        except (StoreError, IdempotencyInProgressError) as exc:  # tried again later
            return f"failed: {exc}"
        except KernelError as exc:
            raise ValueError(
                f"simulate: run {name} of workflow {workflow_id!r} was refused its input "
                f"{json.dumps(input, default=str)}: {exc} (check inputs=)"
            ) from exc
        self.names[created.workflow_run_id] = name
        self.outside.plan_run(name, workflow_id, self.kernel.clock.now())
        return f"run {created.workflow_run_id}"

    def _inserted_once(self, name: str, changes: Sequence[Change]) -> None:
        inserted = self.inserted.setdefault(name, [])
        inserted += [c.effect.run.id for c in changes if isinstance(c.effect, InsertRun)]
        if len(inserted) > 1:
            raise Violation(
                f"replaying an idempotent command changes nothing: {name}'s run.create "
                f"(key sim-{name}), sent again after its answer was lost, created runs "
                f"{inserted}"
            )

    def _resend(self, name: str) -> str:
        """The same ``run.create`` delivered a second time: it must change nothing."""
        workflow_id, input = self.sent[name]
        first = self.by_name(name)
        command = RunCreate(workflow_id=workflow_id, input=input, idempotency_key=f"sim-{name}")

        def nothing_changed(changes: Sequence[Change]) -> None:
            writes = [type(c.effect).__name__ for c in changes if not isinstance(c.effect, KEYS)]
            if writes:
                raise Violation(
                    f"replaying an idempotent command changes nothing: {name}'s run.create "
                    f"sent again wrote {writes}"
                )

        answered: list[str] = []

        def same_run(changes: Sequence[Change]) -> None:
            nothing_changed(changes)
            if answered and answered[0] != first:
                raise Violation(
                    f"replaying an idempotent command changes nothing: {name}'s run.create "
                    f"sent again answered run {answered[0]}, not {first}"
                )

        self.step = same_run
        try:
            answered.append(self.kernel.dispatch(command).workflow_run_id)
        except KernelError as exc:
            return f"failed: {type(exc).__name__}: {exc}"
        return f"answered run {answered[0]} again"

    def _refusable(self, act: Callable[[], str]) -> str:
        try:
            return act()
        except KernelError as exc:  # a cancel or rerun the run's state refuses
            return f"refused: {type(exc).__name__}"

    def _cancel(self, run_id: str) -> str:
        cancelled = self.kernel.dispatch(RunCancel(workflow_run_id=run_id, reason="simulated"))
        return "cancelled" if cancelled.cancelled else "not cancelled"

    def _rerun(self, run_id: str, stage_id: str) -> str:
        self.reopened.add(run_id)
        rerun = self.kernel.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id=stage_id))
        run = self.store.get_run(run_id)
        if run is not None and rerun.deleted_stages:  # its signal stages wait again
            now = self.kernel.clock.now()
            self.outside.plan_run(self.names[run_id], run.workflow_id, now, rerun.deleted_stages)
        return f"rerun, deleted {rerun.deleted_stages}"

    # -- the serverless function ---------------------------------------------------------

    def deliver(self, job_name: str) -> str:
        """Handle one queue message for ``job_name`` (``r3/extract``) as the serverless
        host does: lease the stage's queued job, then execute it."""
        if job_name not in self.messages:
            return "no such message"
        self.messages.remove(job_name)
        try:
            return self._handle(job_name)
        except StoreError as exc:  # the platform delivers the message again later
            self.messages.append(job_name)
            return f"failed: {exc}"
        except SimulatedCrash as exc:  # the function died; its lease is left to be reaped
            return f"died: {exc}"

    def _handle(self, job_name: str) -> str:
        name, _, stage_id = job_name.partition("/")
        run_id = self.by_name(name)
        run = self.store.get_run(run_id) if run_id is not None else None
        if run is None or run_id is None:
            return "skipped: no such run"
        jobs = [job for job in self.store.get_jobs(run_id) if job.stage_id == stage_id]
        queued = [job for job in jobs if job.status == JobStatus.QUEUED]
        if not queued:
            return f"skipped: the stage's job is {jobs[-1].status if jobs else 'missing'}"
        lease = JobLease(
            job_id=queued[-1].id, worker_id=SERVERLESS, workflow_run_id=run_id, stage_id=stage_id
        )
        took = self.kernel.dispatch(lease)
        if took.job is None:
            return f"skipped: {took.reason}"
        if run.status in RUN_TERMINAL:
            broken = (
                f"a terminal run starts no user code: {SERVERLESS} leased {job_name} of a "
                f"{run.status} run"
            )

            def started(changes: Sequence[Change]) -> None:
                raise Violation(broken)

            self.step = started
            return f"leased {took.job.id} of a {run.status} run"
        command = JobExecute(
            workflow_run_id=run_id,
            workflow_id=run.workflow_id,
            stage_id=stage_id,
            config=run.config,
            job_id=took.job.id,
        )
        result = self.kernel.dispatch(command)
        return f"{took.job.id}: {result.outcome}"

    def check(self, changes: Sequence[Change]) -> None:
        """Name the runs schedules created; then check what this step's commands must
        have answered or written."""
        if self.outside.schedules:
            for change in changes:
                effect = change.effect
                if isinstance(effect, InsertRun) and effect.run.id not in self.names:
                    self._name_scheduled(effect.run.id, effect.run.metadata)
        step, self.step = self.step, None
        if step is not None:
            step(changes)
        if self.outside.step is not None:
            self.outside.check(changes)

    def _name_scheduled(self, run_id: str, metadata: dict[str, Any]) -> None:
        """A schedule's run is named by its schedule and fire time: ``every-20s@41.2s``."""
        schedule_id, fire_time = metadata.get("schedule_id"), metadata.get("fire_time")
        if not isinstance(schedule_id, str) or not isinstance(fire_time, str):
            return
        fire = (datetime.fromisoformat(fire_time) - START).total_seconds()
        name = f"{schedule_id}@{f'{fire:.3f}'.rstrip('0').rstrip('.')}s"
        self.names[run_id] = name
        run = self.store.tables.runs.get(run_id)
        if run is not None:
            self.outside.plan_run(name, run.workflow_id, self.kernel.clock.now())
