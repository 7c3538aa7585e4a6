"""The invariants of signals, schedules and provider calls (SPEC §11 to §14, §17),
checked after every step from the changes it committed.

* **Signals**: a signal is consumed once; a stage that takes a signal writes one
  ``stage:signalled`` and completes in the same step; a stage that timed out
  never takes a signal, and one that took a signal never times out.
* **Schedules**: each (schedule, fire time) has at most one run; a
  ``catchup="all"`` schedule (that never skips) has a run for every fire time from
  its first to its last, and leaves nothing due at a tick; a ``catchup="latest"``
  tick fires the latest due time.
* **Providers**: every AI call the provider answered is in the usage ledger (but
  for a ledger write that a simulated store failure rolled back); a batch is
  submitted once per intent (tag); when a batch stage completes, each item its
  provider answered has its usage row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kernel.ai.batch import ItemSucceeded
from kernel.effects import (
    AppendOutbox,
    ConsumeSignal,
    DeleteSchedule,
    DeleteStage,
    InsertRun,
    InsertSchedule,
    InsertSignal,
    InsertUsage,
    UpdateSchedule,
    UpdateStage,
)
from kernel.llm_batch_state import batch_tag
from kernel.records import SignalRecord, WorkflowStage
from kernel.schedules import ScheduleRecord, next_fire
from kernel.status import Status
from kernel.workflows import Workflow
from testing.simulate.providers import ProviderFaults
from testing.simulate.store import Change, SimStore
from testing.simulate.violation import Violation

Stage = tuple[str, str]
"""A stage of a run: ``(run id, stage id)``."""

MAX_FIRES = 100
"""The fire times one ``schedule.tick`` creates at most (``ScheduleTick().max_fires``)."""


class FeatureChecks:
    """What the signal, schedule and provider invariants remember across steps."""

    def __init__(
        self,
        store: SimStore,
        workflows: Mapping[str, Workflow[Any, Any]],
        run_name: Callable[[str], str],
        call_ids: set[str],
        providers: ProviderFaults,
        start: datetime,
        *,
        watch: bool = False,
    ) -> None:
        """``watch``: check even without signal or batch stages (the simulation has
        schedules, or an ``AIConfig``)."""
        self.store = store
        self.workflows = workflows
        self.run_name = run_name
        self.call_ids = call_ids
        """The usage ledger's call ids so far (the checker's)."""
        self.providers = providers
        self.start = start
        self.consumed: dict[str, Stage] = {}
        """Signal id → the stage that consumed it."""
        self.signalled: set[Stage] = set()
        """Stages (of their current rerun) that took a signal."""
        self.timed_out: set[Stage] = set()
        self.fires: dict[tuple[str, datetime], str] = {}
        """(schedule id, fire time) → the run created for it."""
        self.fired: dict[str, list[datetime]] = {}
        self.first_fire: dict[str, datetime] = {}
        self.batch_stages = {
            stage.id
            for workflow in workflows.values()
            for stage in workflow.stages
            if stage.batch_provider is not None
        }
        """The ids of LLM batch stages (of any workflow): a completion to look at."""
        signals = any(stage.signal for w in workflows.values() for stage in w.stages)
        self.active = signals or bool(self.batch_stages) or watch
        """Whether there is anything to check: signal or batch stages, schedules or AI
        calls (a simulation without them pays nothing for these checks)."""

    def seconds(self, when: datetime | None) -> str:
        return "never" if when is None else f"t={(when - self.start).total_seconds():.3f}s"

    def stage_name(self, stage: Stage) -> str:
        return f"stage {stage[1]!r} of run {self.run_name(stage[0])}"

    # -- one step ---------------------------------------------------------------------

    def after_step(self, changes: Sequence[Change]) -> None:
        """Raise :class:`Violation` for the first invariant of this module the step broke."""
        if not self.active:
            return
        consumed: list[Stage] = []
        signalled: list[Stage] = []
        completed: set[Stage] = set()
        ledger_rows = 0
        fires_now: dict[str, list[datetime]] = {}
        for change in changes:
            match change.effect:
                case InsertSignal(signal) if signal.consumed_at is not None:
                    consumed.append(self._consume(signal))
                case ConsumeSignal(signal):
                    consumed.append(self._consume(signal))
                case AppendOutbox(event):
                    stage = (event.workflow_run_id, str(getattr(event, "stage_id", "")))
                    if event.type == "stage:signalled":
                        self._signalled(stage)
                        signalled.append(stage)
                    elif event.type == "stage:completed":
                        completed.add(stage)
                case UpdateStage(record):
                    self._stage_moved(record)
                case DeleteStage(record):  # a rerun: the stage starts over
                    stage = (record.workflow_run_id, record.stage_id)
                    self.signalled.discard(stage)
                    self.timed_out.discard(stage)
                case InsertRun(run) if "schedule_id" in run.metadata:
                    fire = self._fire(run.id, run.metadata)
                    if fire is not None:
                        fires_now.setdefault(fire[0], []).append(fire[1])
                case InsertSchedule(record):
                    if record.next_fire_at is not None:
                        self.first_fire.setdefault(record.id, record.next_fire_at)
                case UpdateSchedule(record):
                    self._ticked(record, fires_now.get(record.id, []))
                case DeleteSchedule():
                    pass
                case InsertUsage(entry) if entry.kind != "batch":
                    ledger_rows += 1
        self._paired(consumed, signalled, completed)
        self._paid(ledger_rows)
        twice = self.providers.twice()
        if twice is not None:
            raise Violation(twice)

    # -- signals ------------------------------------------------------------------------

    def _consume(self, signal: SignalRecord) -> Stage:
        stage = (signal.workflow_run_id, signal.stage_id or "?")
        earlier = self.consumed.get(signal.id)
        if earlier is not None:
            raise Violation(
                f"a signal is consumed once: signal {signal.id} ({signal.name!r}) of run "
                f"{self.run_name(signal.workflow_run_id)} was taken by "
                f"{earlier[1]!r}, then by {stage[1]!r}"
            )
        self.consumed[signal.id] = stage
        return stage

    def _signalled(self, stage: Stage) -> None:
        if stage in self.timed_out:
            raise Violation(
                f"a stage that timed out takes no signal: {self.stage_name(stage)} failed "
                "with SIGNAL_TIMEOUT, then took a signal"
            )
        if stage in self.signalled:
            raise Violation(
                f"a delivered signal completes its stage once: {self.stage_name(stage)} "
                "took a second signal"
            )
        self.signalled.add(stage)

    def _stage_moved(self, record: WorkflowStage) -> None:
        if record.status == Status.COMPLETED and record.stage_id in self.batch_stages:
            self._batch_completed(record)
            return
        if record.status != Status.FAILED or not (record.error or "").startswith("SIGNAL_TIMEOUT"):
            return
        stage = (record.workflow_run_id, record.stage_id)
        if stage in self.signalled:
            raise Violation(
                f"a stage that took a signal never times out: {self.stage_name(stage)} "
                "took a signal, then failed with SIGNAL_TIMEOUT"
            )
        self.timed_out.add(stage)

    def _paired(self, consumed: list[Stage], signalled: list[Stage], completed: set[Stage]) -> None:
        for stage in signalled:
            if stage not in completed:
                raise Violation(
                    f"a delivered signal completes its stage: {self.stage_name(stage)} wrote "
                    "stage:signalled but no stage:completed in the same step"
                )
        if sorted(consumed) != sorted(signalled):
            raise Violation(
                "each consumed signal is one stage:signalled: this step consumed signals for "
                f"{[self.stage_name(s) for s in consumed]}, and wrote stage:signalled for "
                f"{[self.stage_name(s) for s in signalled]}"
            )

    # -- schedules ------------------------------------------------------------------------

    def _fire(self, run_id: str, metadata: Mapping[str, Any]) -> tuple[str, datetime] | None:
        schedule_id, fire_time = metadata.get("schedule_id"), metadata.get("fire_time")
        if not isinstance(schedule_id, str) or not isinstance(fire_time, str):
            return None
        fire = datetime.fromisoformat(fire_time)
        other = self.fires.get((schedule_id, fire))
        if other is not None:
            raise Violation(
                f"each schedule fire time has one run: schedule {schedule_id!r}'s fire at "
                f"{self.seconds(fire)} has runs {self.run_name(other)} and "
                f"{self.run_name(run_id)}"
            )
        self.fires[(schedule_id, fire)] = run_id
        self.fired.setdefault(schedule_id, []).append(fire)
        return schedule_id, fire

    def _ticked(self, record: ScheduleRecord, fires: list[datetime]) -> None:
        """A tick (or an upsert) moved the schedule: check its catch-up policy."""
        if not record.enabled or record.last_fire_at is None or record.next_fire_at is None:
            return
        schedule, last = record.schedule, record.last_fire_at
        if record.catchup == "all" and record.overlap == "allow":
            first = self.first_fire.get(record.id)
            if first is None:
                return
            expected = [first]
            while expected[-1] < last:
                expected.append(next_fire(schedule, UTC, expected[-1]))
            got = sorted(self.fired.get(record.id, []))
            if got != expected:
                missing = [self.seconds(t) for t in expected if t not in got]
                raise Violation(
                    f"a catch-up 'all' schedule has a run for every fire time: schedule "
                    f"{record.id!r} fired up to {self.seconds(last)} without runs for "
                    f"{missing or 'none'} (runs for {[self.seconds(t) for t in got]})"
                )
            if record.next_fire_at <= record.updated_at and len(fires) < MAX_FIRES:
                raise Violation(
                    f"a catch-up 'all' schedule leaves nothing due: schedule {record.id!r} "
                    f"ticked at {self.seconds(record.updated_at)} and left the fire at "
                    f"{self.seconds(record.next_fire_at)} for later"
                )
        elif record.catchup == "latest" and fires:
            latest = fires[-1]
            following = next_fire(schedule, UTC, latest)
            if len(fires) > 1 or not latest <= record.updated_at < following:
                raise Violation(
                    f"a catch-up 'latest' schedule fires the latest due time once: schedule "
                    f"{record.id!r} ticked at {self.seconds(record.updated_at)} and fired "
                    f"{[self.seconds(t) for t in fires]}"
                )

    # -- providers ------------------------------------------------------------------------

    def _paid(self, ledger_rows: int) -> None:
        answered = self.providers.take_answered()
        lost = self.store.take_usage_lost()
        if answered != ledger_rows + lost:
            raise Violation(
                f"a paid call is in the ledger: the AI provider answered {answered} calls "
                f"in this step, the ledger got {ledger_rows} rows"
                + (f" ({lost} writes failed on purpose)" if lost else "")
            )

    def _batch_completed(self, record: WorkflowStage) -> None:
        """A batch stage completed: each item its provider answered has its usage row."""
        run = self.store.tables.runs.get(record.workflow_run_id)
        workflow = None if run is None else self.workflows.get(run.workflow_id)
        stage = None if workflow is None else workflow.stage(record.stage_id)
        if stage is None or stage.batch_provider is None:
            return
        generation = 1
        while True:
            tag = batch_tag(record.workflow_run_id, record.stage_id, record.id, generation)
            if tag not in self.providers.accepted:
                return
            for custom_id, result in self.providers.results.get(tag, {}).items():
                if isinstance(result, ItemSucceeded) and f"{tag}:{custom_id}" not in self.call_ids:
                    raise Violation(
                        f"each answered batch item's usage is recorded: "
                        f"{self.stage_name((record.workflow_run_id, record.stage_id))} "
                        f"completed without a ledger row for item {custom_id!r} of "
                        f"generation {generation}"
                    )
            generation += 1


__all__ = ["FeatureChecks"]
