"""What the simulation's client sends besides runs: signals and schedules.

**Signals.** When a run is named (created by the client, or by a schedule) the
client plans one signal for each of its workflow's signal stages, each at its own
moment: a few seconds after the run was created (before its stage waits, so the
signal is kept), while the stage waits, or, for a stage with a ``timeout``, past
it (then it must be refused). The moment and the payload depend only on the run's
name and the stage, so a replay plans the same signals. A signal whose answer was
lost is sent again with the same idempotency key; a ``duplicate`` fault sends an
answered one again (``client resignal r3 approval#1``): it must answer the same
and write nothing. A rerun plans new signals for the signal stages it starts over.

**Schedules.** The client upserts each schedule given to ``simulate`` early on
(``client schedule every-20s``) and deletes it ``Timing.schedule_lifetime`` later
(``client unschedule every-20s``); the workers' ticks fire it meanwhile.

Every check of what a command answered or wrote is made once the step's changes
are known (:meth:`Outside.check`), so the step is in the trace when it fails.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from attrs import define

from kernel.commands import RunSignal, RunSignalResult, ScheduleDelete, ScheduleUpsert
from kernel.decisions.run_signal import waiting_for
from kernel.dispatch import Kernel
from kernel.effects import CompleteIdempotency, InsertSignal, ReleaseIdempotency
from kernel.errors import (
    IdempotencyInProgressError,
    InvalidStateError,
    KernelError,
    RunNotFoundError,
    StoreError,
)
from kernel.schedules import Schedule
from kernel.status import RUN_TERMINAL
from kernel.workflows import Workflow
from testing.clock import FakeClock
from testing.simulate.faults import Timing
from testing.simulate.store import Change, SimStore
from testing.simulate.violation import Violation

START = FakeClock().now()
"""When every simulation starts: the trace's times are seconds since then."""

SignalPayloads = Callable[[random.Random, Workflow[Any, Any], str], Mapping[str, Any]]
"""``signals=``: a signal's payload, from a generator, the run's workflow and the signal."""

RETRY_AFTER = timedelta(seconds=5)
"""How long the client waits before sending a failed command again."""

KEYS = (CompleteIdempotency, ReleaseIdempotency)
"""Effects on idempotency keys only: what a replayed or refused command may write."""

Act = Callable[[], str]
Check = Callable[[Sequence[Change]], None]


def seconds(when: datetime) -> str:
    return f"t={(when - START).total_seconds():.3f}s"


@define
class SignalPlan:
    """One signal the client will send to a run (its ``number``-th of that name)."""

    run: str
    signal: str
    number: int
    payload: Any
    due: datetime
    answer: RunSignalResult | None = None
    """The first answer: delivered or kept (``None``: none yet, or refused)."""
    done: bool = False
    """Answered or refused (not to be sent again but by a ``duplicate`` fault)."""
    kept: int = 0
    """How many signals its sends inserted (more than one: a duplicate)."""
    tries: int = 0
    """How many times it was sent (a send whose answer was lost may have gone through)."""

    @property
    def name(self) -> str:
        return f"{self.signal}#{self.number}"

    @property
    def idempotency_key(self) -> str:
        return f"sim-{self.run}-{self.signal}-{self.number}"

    def key(self, payload: Any | None = None) -> str:
        data = json.dumps(
            self.payload if payload is None else payload,
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return f"client signal {self.run} {self.name} {data}"


@define
class SchedulePlan:
    """A schedule the client upserts, then deletes."""

    schedule: Schedule
    upsert_at: datetime | None = None
    delete_at: datetime | None = None
    upserted: bool = False
    deleted: bool = False


class Outside:
    """The client's signals and schedules: what it plans, sends, and checks."""

    def __init__(
        self,
        kernel: Kernel,
        store: SimStore,
        names: dict[str, str],
        workflows: Mapping[str, Workflow[Any, Any]],
        *,
        payloads: SignalPayloads | None,
        schedules: Sequence[Schedule],
        timing: Timing,
    ) -> None:
        self.kernel = kernel
        self.store = store
        self.names = names
        self.workflows = workflows
        self.payloads = payloads
        self.timing = timing
        self.signals: dict[tuple[str, str], SignalPlan] = {}
        """(run name, ``signal#n``) → the plan, in planning order."""
        self.schedules = {schedule.id: SchedulePlan(schedule) for schedule in schedules}
        self.step: Check | None = None

    def _run_id(self, name: str) -> str | None:
        return next((run_id for run_id, known in self.names.items() if known == name), None)

    # -- planning ----------------------------------------------------------------------

    def plan_run(
        self, name: str, workflow_id: str, since: datetime, only: Sequence[str] = ()
    ) -> None:
        """Plan a signal for each signal stage of run ``name`` (``only``: of these stages)."""
        workflow = self.workflows.get(workflow_id)
        if workflow is None:
            return
        for stage in workflow.stages:
            if stage.signal is None or (only and stage.id not in only):
                continue
            number = 1 + sum(
                1 for p in self.signals.values() if (p.run, p.signal) == (name, stage.signal)
            )
            rng = random.Random(f"{name}/{stage.id}/{number}")
            wait = self.timing.signal_wait.total_seconds()
            timeout = stage.signal_timeout.total_seconds() if stage.signal_timeout else None
            draw = rng.random()
            if draw < 0.3:  # before the stage waits: kept
                after = rng.uniform(0, 3)
            elif draw < 0.85 or timeout is None or timeout > wait:  # while it waits
                after = rng.uniform(3, 0.9 * min(timeout or wait, wait))
            else:  # past its timeout: refused
                after = rng.uniform(1.0, 1.5) * timeout
            payload = self.payloads(rng, workflow, stage.signal) if self.payloads else {}
            plan = SignalPlan(
                name,
                stage.signal,
                number,
                dict(payload),
                since + timedelta(milliseconds=round(after * 1000)),
            )
            self.signals[(name, plan.name)] = plan

    def plan_upsert(self, schedule_id: str, at: datetime) -> None:
        self.schedules[schedule_id].upsert_at = at

    # -- what may happen -----------------------------------------------------------------

    def choices(self, now: datetime) -> dict[str, Act]:
        found: dict[str, Act] = {}
        for plan in self.signals.values():
            if not plan.done and plan.due <= now:
                found[plan.key()] = partial(self._send, plan, plan.payload)
        for schedule_id, item in self.schedules.items():
            if item.upsert_at is not None and item.upsert_at <= now:
                found[f"client schedule {schedule_id}"] = partial(self._upsert, item)
            if item.delete_at is not None and item.delete_at <= now:
                found[f"client unschedule {schedule_id}"] = partial(self._delete, item)
        return found

    def due(self) -> list[datetime]:
        """When the client next has something to send (every planned time)."""
        times = [plan.due for plan in self.signals.values() if not plan.done]
        for item in self.schedules.values():
            times += [t for t in (item.upsert_at, item.delete_at) if t is not None]
        return times

    def pending(self) -> str | None:
        """What the client has still to send (``None``: nothing)."""
        if not self.signals and not self.schedules:
            return None
        for plan in self.signals.values():
            if not plan.done:
                when = seconds(plan.due)
                return f"the client has yet to send {plan.run}'s signal {plan.name} ({when})"
        for schedule_id, item in self.schedules.items():
            if item.upsert_at is not None or (item.upserted and not item.deleted):
                return f"the client has yet to delete schedule {schedule_id!r}"
        return None

    def resendable(self) -> list[str]:
        """Signals answered, which a ``duplicate`` fault may send again."""
        return [
            f"client resignal {plan.run} {plan.name}"
            for plan in self.signals.values()
            if plan.answer is not None
        ]

    def execute(self, words: list[str]) -> str | None:
        """``signal``/``resignal``/``schedule``/``unschedule`` keys; ``None``: it cannot."""
        match words:
            case ["signal", run, name, data]:
                plan = self.signals.get((run, name))
                if plan is None or plan.done:
                    return None
                return self._send(plan, json.loads(data))
            case ["resignal", run, name]:
                plan = self.signals.get((run, name))
                if plan is None or plan.answer is None:
                    return None
                return self._resend(plan)
            case ["schedule", schedule_id] if schedule_id in self.schedules:
                item = self.schedules[schedule_id]
                return None if item.upserted else self._upsert(item)
            case ["unschedule", schedule_id] if schedule_id in self.schedules:
                item = self.schedules[schedule_id]
                return None if not item.upserted or item.deleted else self._delete(item)
        return None

    def check(self, changes: Sequence[Change]) -> None:
        step, self.step = self.step, None
        if step is not None:
            step(changes)

    # -- signals -------------------------------------------------------------------------

    def _command(self, plan: SignalPlan, run_id: str, payload: Any) -> RunSignal:
        return RunSignal(run_id, plan.signal, payload, idempotency_key=plan.idempotency_key)

    def _past_deadline(self, run_id: str, signal: str, now: datetime) -> datetime | None:
        """The deadline, passed, of the stage the signal would go to (``None``: none)."""
        waiting = [s for s in self.store.get_stages(run_id) if waiting_for(s) == signal]
        if not waiting:
            return None
        stage = min(waiting, key=lambda s: s.stage_number)
        deadline = stage.max_wait_until
        return deadline if deadline is not None and deadline <= now else None

    def _send(self, plan: SignalPlan, payload: Any) -> str:
        run_id = self._run_id(plan.run)
        run = None if run_id is None else self.store.get_run(run_id)
        if run is None or run_id is None:
            return "skipped: no such run"
        now = self.kernel.clock.now()
        deadline = self._past_deadline(run_id, plan.signal, now)
        # A send after one whose answer was lost may answer as that one did, then.
        was = run.status if plan.tries == 0 else None
        plan.tries += 1
        got: list[RunSignalResult] = []
        self.step = lambda changes: self._sent(plan, was, deadline, got, changes)
        try:
            answer = self.kernel.dispatch(self._command(plan, run_id, payload))
        except (StoreError, IdempotencyInProgressError) as exc:  # sent again later
            plan.due = now + RETRY_AFTER
            self.step = lambda changes: self._counted(plan, changes)
            return f"failed: {exc}"
        except (InvalidStateError, RunNotFoundError) as exc:
            plan.done = True
            self.step = lambda changes: self._wrote_nothing(plan, "refused", changes)
            return f"refused: {exc}"
        except KernelError as exc:
            raise ValueError(
                f"simulate: signal {plan.signal!r} to run {plan.run} was refused its payload "
                f"{json.dumps(payload, default=str)}: {exc} (check signals=)"
            ) from exc
        plan.done, plan.answer, plan.payload = True, answer, payload  # resent as sent
        got.append(answer)
        return "delivered" if answer.delivered else "kept: no stage waits for it yet"

    def _counted(self, plan: SignalPlan, changes: Sequence[Change]) -> None:
        plan.kept += sum(isinstance(c.effect, InsertSignal) for c in changes)
        if plan.kept > 1:
            raise Violation(
                f"replaying an idempotent command changes nothing: {plan.run}'s signal "
                f"{plan.name} (key {plan.idempotency_key}), sent again, was kept "
                f"{plan.kept} times"
            )

    def _sent(
        self,
        plan: SignalPlan,
        was: Any,
        deadline: datetime | None,
        got: list[RunSignalResult],
        changes: Sequence[Change],
    ) -> None:
        self._counted(plan, changes)
        if not got:
            return
        said = "delivered" if got[0].delivered else "kept"
        if was in RUN_TERMINAL:
            raise Violation(
                f"a finished run takes no signal: {plan.run} was {was}, and its signal "
                f"{plan.name} was {said}"
            )
        if deadline is not None and was is not None and got[0].delivered:
            raise Violation(
                f"a signal past its stage's timeout is refused: {plan.run}'s signal "
                f"{plan.name} was delivered at {seconds(self.kernel.clock.now())}, its "
                f"stage stopped waiting at {seconds(deadline)}"
            )

    def _wrote_nothing(self, plan: SignalPlan, what: str, changes: Sequence[Change]) -> None:
        writes = [type(c.effect).__name__ for c in changes if not isinstance(c.effect, KEYS)]
        if writes:
            raise Violation(
                f"a {what} signal writes nothing: {plan.run}'s signal {plan.name} wrote {writes}"
            )

    def _resend(self, plan: SignalPlan) -> str:
        """The same ``run.signal`` (same key, same payload) once more: the same answer,
        nothing written."""
        run_id = self._run_id(plan.run)
        if run_id is None:
            return "skipped: no such run"
        got: list[RunSignalResult] = []

        def same(changes: Sequence[Change]) -> None:
            self._wrote_nothing(plan, "replayed", changes)
            if got and got[0] != plan.answer:
                raise Violation(
                    f"replaying an idempotent command changes nothing: {plan.run}'s signal "
                    f"{plan.name} answered {got[0]} the second time, {plan.answer} the first"
                )

        self.step = same
        try:
            got.append(self.kernel.dispatch(self._command(plan, run_id, plan.payload)))
        except KernelError as exc:
            return f"failed: {type(exc).__name__}: {exc}"
        return "answered as the first time" if got[0] == plan.answer else f"answered {got[0]}"

    # -- schedules -----------------------------------------------------------------------

    def _upsert(self, item: SchedulePlan) -> str:
        now = self.kernel.clock.now()
        try:
            upserted = self.kernel.dispatch(ScheduleUpsert(item.schedule))
        except StoreError as exc:  # upserted again later (an upsert keeps its fire times)
            item.upsert_at = now + RETRY_AFTER
            return f"failed: {exc}"
        except KernelError as exc:
            raise ValueError(f"simulate: schedule {item.schedule.id!r} was refused: {exc}") from exc
        item.upsert_at, item.upserted = None, True
        item.delete_at = now + self.timing.schedule_lifetime
        fires = upserted.next_fire_at
        return f"first fire at {seconds(fires)}" if fires is not None else "paused"

    def _delete(self, item: SchedulePlan) -> str:
        now = self.kernel.clock.now()
        try:
            deleted = self.kernel.dispatch(ScheduleDelete(item.schedule.id))
        except StoreError as exc:
            item.delete_at = now + RETRY_AFTER
            return f"failed: {exc}"
        item.delete_at, item.deleted = None, True
        return "deleted" if deleted.deleted else "already gone"


__all__ = ["START", "Outside", "SignalPayloads", "seconds"]
