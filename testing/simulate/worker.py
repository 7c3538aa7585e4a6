"""A virtual worker: the hosts' step function, driven one step at a time.

A real host (:mod:`adapters.hosts.driver`) carries out the step function's
actions on threads; here each piece of work they start becomes a *task* whose
next operation is one simulation step: one part of a tick, one lease
transaction, one call of a stage's code, one finish transaction. The
scheduler picks which worker's next operation runs, so any interleaving of
workers, and a crash between any two commits, can happen.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from attrs import define

from adapters.hosts.schedule import (
    Action,
    DequeueEnded,
    DequeueJob,
    FlushOutbox,
    Happened,
    JobFinished,
    JobLeased,
    LeaseNext,
    NextJobWanted,
    ReleaseLease,
    RenewLease,
    RunTick,
    Settings,
    Started,
    Stop,
    TickDone,
    Wakeup,
    WorkerState,
    initial_state,
    next_wakeup,
    step,
)
from kernel.commands import (
    BatchCancelPending,
    LeaseReapStale,
    LeaseRelease,
    OutboxFlush,
    RunClaimPending,
    RunTransition,
    ScheduleTick,
    StagePollSuspended,
)
from kernel.dispatch import Kernel, _nothing
from kernel.effects import ExecuteStage
from kernel.outcomes import StageRun
from kernel.records import Job
from kernel.shell.job_execute import Leased, finish_and_lease, lease_next
from kernel.shell.steps import Done
from kernel.status import RUN_TERMINAL, JobStatus, Status
from testing.batch import SimulatedCrash

FLUSH_BATCH = 5
"""Events one flush step publishes at most (a tick's flush repeats while there are more)."""

Namer = Callable[[Job], str]
"""How a trace names a job: ``r3/extract`` (its run's name and its stage)."""


@define
class Tick:
    """A tick in progress: the parts still to run, and what the done ones found."""

    parts: list[str]
    found_work: bool = False
    ok: bool = True
    backlog: bool = False


@define
class SlotWork:
    """A slot's dequeue in progress: its next operation, and the job it works on."""

    max_jobs: int
    op: str = "lease"  # lease | run | finish
    done: int = 0
    job: Job | None = None
    started: ExecuteStage | None = None
    ran: StageRun | None = None
    ready_at: datetime | None = None
    """A slow stage: its code returns (the finish may run) at this time."""


class VirtualWorker:
    """One worker: its step-function state and the tasks its actions started."""

    def __init__(
        self, name: str, kernel: Kernel, settings: Settings, stale_threshold_ms: int, namer: Namer
    ) -> None:
        self.name = name
        self.kernel = kernel
        self.settings = settings
        self.stale_threshold_ms = stale_threshold_ms
        self.namer = namer
        self.incarnation = 0
        self.started = False
        self.paused_until: datetime | None = None
        self.state: WorkerState = initial_state(settings)
        self._woken: tuple[WorkerState, datetime | None] | None = None
        self.tick: Tick | None = None
        self.slots: dict[int, SlotWork] = {}
        self._acts: dict[int, Callable[[], str]] = {}
        """Each slot's operation (made once: it looks the slot's work up when run)."""
        self.schedules = False
        """Whether its ticks fire schedules (``schedule.tick``), as a host's do; a
        simulation without schedules leaves that part out (it would find nothing)."""
        self.notes: list[str] = []
        self.broken: list[str] = []
        """Invariants this worker saw broken: a lost lease's finish accepted, user code
        started for a terminal run."""

    @property
    def worker_id(self) -> str:
        return self.name if self.incarnation == 0 else f"{self.name}#{self.incarnation + 1}"

    # -- life and death ---------------------------------------------------------------

    def start(self) -> str:
        self.started = True
        self.feed(Started())
        return self._said(f"started as {self.worker_id}")

    def crash(self) -> None:
        """Drop everything this worker knew; it restarts later as a new incarnation."""
        self.incarnation += 1
        self.started = False
        self.paused_until = None
        self.state = initial_state(self.settings)
        self.tick = None
        self.slots = {}

    def paused(self, now: datetime) -> bool:
        return self.paused_until is not None and now < self.paused_until

    # -- feeding the step function ----------------------------------------------------

    def feed(self, happened: Happened) -> tuple[Action, ...]:
        self.state, actions = step(self.state, self.kernel.clock.now(), happened)
        for action in actions:
            self._perform(action)
        return actions

    def _perform(self, action: Action) -> None:
        match action:
            case RunTick(sweep=sweep):
                # The parts of adapters.hosts.tick.Orchestrator.tick, in its order.
                parts = [
                    *(["schedules"] if self.schedules else []),
                    "claim",
                    "poll",
                    "reap",
                    *(["batch cancels"] if self.kernel.batch_providers else []),
                    *(["sweep"] if sweep else []),
                    "flush",
                ]
                self.tick = Tick(parts)
            case DequeueJob(slot=slot, max_jobs=max_jobs):
                self.slots[slot] = SlotWork(max_jobs)
            case RenewLease(job_id=job_id):
                try:  # a failed renewal is logged by the host; the next one may work
                    renewed = self.kernel.store.renew_lease(job_id, self.worker_id, self._now())
                    self.notes.append(f"renew {job_id}{'' if renewed else ' (lost)'}")
                except Exception as exc:
                    self.notes.append(f"renew {job_id} failed: {exc}")
            case ReleaseLease(job_id=job_id):
                try:
                    release = LeaseRelease(job_ids=(job_id,), worker_id=self.worker_id)
                    self.kernel.dispatch(release)
                    self.notes.append(f"release {job_id}")
                except Exception as exc:
                    self.notes.append(f"release {job_id} failed: {exc}")
            case LeaseNext() | FlushOutbox() | Stop():
                pass  # no stop is ever requested in a simulation

    def _now(self) -> datetime:
        return self.kernel.clock.now()

    def _said(self, text: str) -> str:
        notes, self.notes = self.notes, []
        return "; ".join([text, *notes]) if notes else text

    # -- what this worker may do now ---------------------------------------------------

    def choices(self, now: datetime) -> list[tuple[str, Callable[[], str]]]:
        """``(key, act)`` for each operation this worker may run now."""
        if self.paused(now):
            return []
        if not self.started:
            return [(f"{self.name} start", self.start)]
        found: list[tuple[str, Callable[[], str]]] = []
        wake = self.wakeup()
        if wake is not None and wake <= now:
            found.append((f"{self.name} wake", self._wake))
        if self.tick is not None:
            found.append((f"{self.name} tick {self.tick.parts[0]}", self._tick_part))
        slots = self.slots
        for index in sorted(slots) if len(slots) > 1 else slots:
            work = slots[index]
            if work.ready_at is not None and now < work.ready_at:
                continue
            act = self._acts.get(index)
            if act is None:
                act = self._acts[index] = self._slot_op(index)
            what = "" if work.job is None else f" {self.namer(work.job)}"
            found.append((f"{self.name}/s{index} {work.op}{what}", act))
        return found

    def due(self) -> datetime | None:
        """The next time this worker has something to do, if it waits for time."""
        times = [t for t in (self.wakeup(), self.paused_until) if t is not None]
        times += [w.ready_at for w in self.slots.values() if w.ready_at is not None]
        return min(times) if times else None

    def wakeup(self) -> datetime | None:
        """``next_wakeup`` of the current state (remembered: states are immutable)."""
        if self._woken is None or self._woken[0] is not self.state:
            self._woken = (self.state, next_wakeup(self.state))
        return self._woken[1]

    def _wake(self) -> str:
        self.feed(Wakeup())
        return self._said("woke")

    # -- ticks -------------------------------------------------------------------------

    def _tick_part(self) -> str:
        tick = self.tick
        assert tick is not None
        part = tick.parts[0]
        try:
            said, repeat = self._run_part(tick, part)
        except Exception as exc:  # a failing part is logged; the tick goes on (as the host's)
            tick.ok = False
            said, repeat = f"failed: {type(exc).__name__}: {exc}", False
        except SimulatedCrash as exc:  # a batch provider's fake killed this worker
            self.crash()
            return self._said(f"died: {exc}")
        if not repeat:
            tick.parts.pop(0)
        if not tick.parts:
            self.tick = None
            self.feed(TickDone(ok=tick.ok, found_work=tick.found_work, backlog=tick.backlog))
        return self._said(said)

    def _run_part(self, tick: Tick, part: str) -> tuple[str, bool]:
        k = self.kernel
        match part:
            case "schedules":
                ticked = k.dispatch(ScheduleTick())
                tick.found_work |= bool(ticked.created)
                return f"fired {len(ticked.created)}, skipped {ticked.skipped}", False
            case "batch cancels":
                done = k.dispatch(BatchCancelPending())
                return f"cancelled {done.cancelled}, {done.failed} failed", False
            case "claim":
                claimed = k.dispatch(RunClaimPending(worker_id=self.worker_id, max_claims=10))
                tick.found_work |= bool(claimed.claimed)
                tick.backlog = len(claimed.claimed) >= 10
                return f"claimed {len(claimed.claimed)}", False
            case "poll":
                polled = k.dispatch(StagePollSuspended())
                for run_id in polled.resumed_workflow_run_ids:
                    k.dispatch(RunTransition(workflow_run_id=run_id))
                tick.found_work |= bool(polled.resumed)
                return f"checked {polled.checked}, resumed {polled.resumed}", False
            case "reap":
                ms = self.stale_threshold_ms
                reaped = k.dispatch(LeaseReapStale(stale_threshold_ms=ms)).released
                tick.found_work |= bool(reaped)
                return f"reaped {reaped}", False
            case "sweep":
                moved = 0
                for run in k.store.list_runs(status=Status.RUNNING, limit=500):
                    stages = k.store.get_stages(run.id)
                    if stages and not any(stage.is_active for stage in stages):
                        result = k.dispatch(RunTransition(workflow_run_id=run.id))
                        moved += result.action != "noop"
                tick.found_work |= bool(moved)
                return f"moved {moved}", False
        flushed = k.dispatch(OutboxFlush(max_events=FLUSH_BATCH))
        if flushed.failed:
            return f"published {flushed.published}, {flushed.failed} failed", False
        if not flushed.published:
            return "nothing to publish", False
        return f"published {flushed.published}", flushed.published == FLUSH_BATCH

    # -- slots ---------------------------------------------------------------------------

    def _slot_op(self, index: int) -> Callable[[], str]:
        def act() -> str:
            work = self.slots[index]
            try:
                match work.op:
                    case "lease":
                        said = self._lease(index, work)
                    case "run":
                        said = self._run(work)
                    case _:
                        said = self._finish(index, work)
            except Exception as exc:  # the host frees the slot and logs (driver._work)
                self.slots.pop(index, None)
                if work.job is not None and work.op != "lease":
                    self.feed(JobFinished(index, work.job.id, "error"))
                self.feed(DequeueEnded(index, failed=True))
                said = f"failed: {type(exc).__name__}: {exc}"
            except SimulatedCrash as exc:  # a batch provider's fake killed this worker
                self.crash()
                said = f"died: {exc}"
            return self._said(said)

        return act

    def _more(self, index: int, work: SlotWork) -> Callable[[], bool]:
        def more() -> bool:
            if work.done + 1 >= work.max_jobs:
                return False
            return LeaseNext(index) in self.feed(NextJobWanted(index))

        return more

    def _lease(self, index: int, work: SlotWork) -> str:
        leased = self.kernel._drive(lease_next(self.worker_id, Done), _nothing)
        return self._took(index, work, leased)

    def _took(self, index: int, work: SlotWork, leased: Leased | None) -> str:
        """Carry on with what a lease transaction gave: nothing, a settled job, or a start."""
        while leased is not None and leased.plan.execute is None:
            skipped = leased.plan.skipped
            assert skipped is not None
            queued = bool(skipped.queued_jobs)
            self.feed(JobFinished(index, leased.job.id, skipped.outcome, queued=queued))
            work.done += 1
            self.notes.append(f"settled {self.namer(leased.job)} without running it")
            leased = None
            if self._more(index, work)():
                leased = self.kernel._drive(lease_next(self.worker_id, Done), _nothing)
        if leased is None:
            self.slots.pop(index, None)
            self.feed(DequeueEnded(index))
            return "queue empty"
        started = leased.plan.execute
        assert started is not None
        job = started.job or leased.job
        run = self.kernel.store.get_run(job.workflow_run_id)
        if run is not None and run.status in RUN_TERMINAL:
            self.broken.append(
                f"a terminal run starts no user code: {self.worker_id} started "
                f"{self.namer(job)} ({job.id}) of a {run.status} run"
            )
        work.job, work.started, work.ran, work.op = job, started, None, "run"
        if ReleaseLease(job.id) in self.feed(JobLeased(index, job.id)):
            self.slots.pop(index, None)
            self.feed(DequeueEnded(index))
            return f"gave {self.namer(job)} back"
        return f"leased {self.namer(job)} ({job.id}, attempt {job.attempt})"

    def _run(self, work: SlotWork) -> str:
        assert work.started is not None
        work.ran = work.started.carry_out(self.kernel._outside)
        work.op = "finish"
        return f"ran: {type(work.ran.outcome).__name__}"

    def _finish(self, index: int, work: SlotWork) -> str:
        assert work.started is not None and work.ran is not None and work.job is not None
        job = work.job
        held = self.kernel.store.get_jobs(job.workflow_run_id)
        lost = not any(
            j.id == job.id and j.status == JobStatus.LEASED and j.worker_id == self.worker_id
            for j in held
        )
        finish = finish_and_lease(work.started, work.ran, self.worker_id, self._more(index, work))
        result, leased = self.kernel._drive(finish, _nothing)
        if lost and result.outcome != "skipped":
            self.broken.append(
                f"a lost lease's finish is refused: {self.worker_id}'s finish of "
                f"{self.namer(job)} ({job.id}) was accepted ({result.outcome}) "
                "though its lease was lost"
            )
        self.feed(JobFinished(index, job.id, result.outcome, queued=bool(result.queued_jobs)))
        work.done += 1
        work.job = work.started = work.ran = None
        work.ready_at, work.op = None, "lease"
        said = f"{result.outcome}{' (lease lost)' if lost else ''}"
        return (
            f"{said}; {self._took(index, work, leased)}"
            if leased is not None
            else self._end(index, said)
        )

    def _end(self, index: int, said: str) -> str:
        self.slots.pop(index, None)
        self.feed(DequeueEnded(index))
        return said
