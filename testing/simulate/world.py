"""The simulated world: one kernel, one store, one clock, a client, a serverless
function and virtual workers.

Everything that can happen is a *choice* named by a readable key
(``w1/s0 finish r3/extract``, ``client create r4 ...``, ``fn deliver r3/b``,
``client signal r3 approval#1 {...}``, ``fault crash w2``);
:meth:`World.execute` carries out one key and says what came of it. The
scheduler (:mod:`testing.simulate.run`) picks keys with the seed's random
generator; a replay reads them back from a trace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from attrs import field, frozen

from adapters.hosts.schedule import Settings
from adapters.memory import _Tables
from kernel.ai.config import AIConfig
from kernel.ai.ports import BatchProvider
from kernel.dispatch import Kernel
from kernel.events import Event
from kernel.records import Job
from kernel.schedules import Schedule
from kernel.status import JobStatus, Status
from kernel.workflows import Workflow
from testing.clock import FakeClock
from testing.kernel import create_test_kernel
from testing.simulate.client import Client, create_key
from testing.simulate.faults import DEFAULT_TIMING, Timing
from testing.simulate.invariants import SERVERLESS, Checker, Predicate
from testing.simulate.outside import START, Outside, SignalPayloads
from testing.simulate.providers import ProviderFaults, wrap
from testing.simulate.runner import InlineRunner
from testing.simulate.store import SimStore
from testing.simulate.violation import Violation
from testing.simulate.worker import VirtualWorker

SETTINGS = Settings(
    concurrency=2,
    orchestration_interval=timedelta(seconds=5),
    job_poll_interval=timedelta(seconds=2),
    lease_renew_interval=timedelta(seconds=10),
    sweep_interval=timedelta(seconds=30),
    max_chain=3,
)
"""How every virtual worker schedules (a host's settings, scaled to few steps per minute)."""

Act = Callable[[], str]


def _workflows(items: Sequence[Workflow[Any, Any]]) -> tuple[Workflow[Any, Any], ...]:
    return tuple(items)


def _predicates(items: Sequence[Predicate]) -> tuple[Predicate, ...]:
    return tuple(items)


def _schedules(items: Sequence[Schedule]) -> tuple[Schedule, ...]:
    return tuple(items)


@frozen(kw_only=True)
class Setup:
    """Everything a simulation and each of its replays is made of, but the seed."""

    workflows: tuple[Workflow[Any, Any], ...] = field(converter=_workflows)
    invariants: tuple[Predicate, ...] = field(default=(), converter=_predicates)
    timing: Timing = DEFAULT_TIMING
    signals: SignalPayloads | None = None
    """Each signal's payload (``None``: the payload types' defaults)."""
    schedules: tuple[Schedule, ...] = field(default=(), converter=_schedules)
    ai: Callable[[], AIConfig] | None = None
    """Makes the ``AIConfig`` of ``ctx.ai``: called for each world, so that the
    providers (fakes keep state) start afresh on every run and replay."""
    batch_providers: Callable[[], Sequence[BatchProvider]] | None = None


class FlakySink:
    """An event sink that fails the next ``failing`` deliveries when told to."""

    def __init__(self) -> None:
        self.max_retries = 20
        self.failing = 0
        self.delivered: dict[str, int] = {}
        """Events the sink took, by run id."""

    def emit(self, event: Event) -> None:
        if self.failing > 0:
            self.failing -= 1
            raise ConnectionError("simulated sink failure")
        run_id = event.workflow_run_id
        self.delivered[run_id] = self.delivered.get(run_id, 0) + 1


class World:
    """The kernel and everything around it, advanced one named step at a time."""

    def __init__(self, setup: Setup) -> None:
        timing = self.timing = setup.timing
        self.clock = FakeClock()
        self.store = SimStore()
        self.sink = FlakySink()
        self.providers = ProviderFaults()
        ai, batch = wrap(
            setup.ai() if setup.ai is not None else None,
            setup.batch_providers() if setup.batch_providers is not None else (),
            self.providers,
        )
        workflows = setup.workflows
        built = create_test_kernel(
            *workflows,
            store=self.store,
            clock=self.clock,
            sink=self.sink,
            ai=ai,
            batch_providers=batch,
        )
        self.kernel = Kernel(
            registry=built.kernel.registry,
            store=self.store,
            clock=self.clock,
            ids=built.kernel.ids,
            sink=self.sink,
            runner=InlineRunner(),
            idempotency_timeout=timing.idempotency_timeout,
            ai=ai,
            batch_providers=batch,
        )
        self.store.watch_usage = ai is not None
        self.workflows = {workflow.id: workflow for workflow in workflows}
        self.schedules = bool(setup.schedules)
        """Whether the workers' ticks fire schedules (a tick without any skips it)."""
        self.names: dict[str, str] = {}
        self.checker = Checker(
            self.store,
            self.names,
            setup.invariants,
            delivered=self.sink.delivered,
            clock=self.clock,
            stale_threshold=timing.stale_threshold,
            workflows=self.workflows,
            providers=self.providers,
            start=START,
            watch=bool(setup.schedules) or ai is not None,
        )
        outside = Outside(
            self.kernel,
            self.store,
            self.names,
            self.workflows,
            payloads=setup.signals,
            schedules=setup.schedules,
            timing=timing,
        )
        self.client = Client(self.kernel, self.store, self.names, self.checker.reopened, outside)
        self.workers: dict[str, VirtualWorker] = {}
        self.early: dict[str, _Tables] = {}
        """Operations that read the store early (a ``stale_read``): the snapshot each reads."""
        self.healed_at: datetime | None = None
        """When the faults stopped (``None``: they go on)."""

    # -- names -------------------------------------------------------------------------

    def job_name(self, job: Job) -> str:
        return f"{self.names.get(job.workflow_run_id, job.workflow_run_id)}/{job.stage_id}"

    def worker(self, name: str) -> VirtualWorker:
        """The worker called ``name``, made on first mention (``w1``, ``w2``, ...)."""
        if name not in self.workers:
            stale_ms = int(self.timing.stale_threshold.total_seconds() * 1000)
            worker = VirtualWorker(name, self.kernel, SETTINGS, stale_ms, self.job_name)
            worker.schedules = self.schedules
            self.workers[name] = worker
        return self.workers[name]

    # -- what may happen now ------------------------------------------------------------

    def choices(self) -> dict[str, Act]:
        """Every worker operation that may run now, by key, in key order."""
        now = self.clock.now()
        found: dict[str, Act] = {}
        for name in sorted(self.workers):
            found.update(self.workers[name].choices(now))
        for job_name in self.client.messages:
            found[f"{SERVERLESS} deliver {job_name}"] = partial(self.client.deliver, job_name)
        outside = self.client.outside
        if outside.signals or outside.schedules:
            found.update(outside.choices(now))
        return found

    def due(self) -> datetime | None:
        """When a worker (or the client) next has something to do, if all of them wait
        for time."""
        times = [t for w in self.workers.values() if (t := w.due()) is not None]
        times += self.client.outside.due()
        later = [t for t in times if t > self.clock.now()]
        return min(later) if later else None

    def unfinished(self) -> str | None:
        """Why the simulation is not done: a run not terminal, a job open, an event
        unsent, a signal or a schedule's deletion the client has yet to send."""
        why = self.checker.unfinished()
        if why is None and (self.client.outside.signals or self.client.outside.schedules):
            return self.client.outside.pending()
        return why

    def execute(self, key: str, choices: dict[str, Act] | None = None) -> str | None:
        """Carry out ``key``; ``None`` if it cannot happen now (a replay skips it).
        ``choices``: :meth:`choices` as computed just before, if at hand."""
        if key.startswith(("client create ", "client signal ")):  # the last word is JSON
            return self.client.execute(key.split(" ", 4)[1:])
        if key.startswith("client "):
            return self.client.execute(key.split(" ")[1:])
        if key.startswith("fault "):
            return self._fault(key.removeprefix("fault ").split())
        if key == "heal" or key.startswith("heal "):
            return self.heal(key.split(" ")[1:])
        act = (self.choices() if choices is None else choices).get(key)
        if act is None:
            return None
        early = self.early.pop(key, None)
        if early is None:
            outcome = act()
        else:
            self.store.read_early = early
            try:
                outcome = act()
            finally:
                self.store.read_early = None
        if self.kernel.batch_providers:  # a batch provider may have killed the worker
            self._died(key)
        if early is None:
            return outcome
        conflicts, self.store.conflicts = self.store.conflicts, []
        if conflicts:
            return f"{outcome}; its early read conflicted ({conflicts[0]}): read again"
        return f"{outcome}; its early read did not conflict"

    def _died(self, key: str) -> None:
        """Forget what a worker that died during the step read early."""
        name = key.split(" ")[0].split("/")[0]
        if name in self.workers and not self.workers[name].started:
            self._forget_early(name)

    def _forget_early(self, name: str) -> None:
        for key in [k for k in self.early if k.split(" ")[0].split("/")[0] == name]:
            del self.early[key]

    def check(self) -> None:
        """Raise :class:`Violation` if the last step broke an invariant."""
        changes = self.store.take_changes()
        self.client.check(changes)
        self.checker.after_step(changes, self.workers.values())

    # -- the client ------------------------------------------------------------------------

    @staticmethod
    def create_key(name: str, workflow_id: str, input: Any) -> str:
        return create_key(name, workflow_id, input)

    def created(self, key: str) -> bool:
        """Whether the run a ``client create`` key names exists."""
        return key.removeprefix("client create ").split(" ", 1)[0] in self.names.values()

    # -- faults ----------------------------------------------------------------------------

    def _fault(self, words: list[str]) -> str | None:
        now = self.clock.now()
        match words:
            case ["crash", name] if name in self.workers and self.workers[name].started:
                worker = self.workers[name]
                lost = [self.job_name(w.job) for w in worker.slots.values() if w.job is not None]
                worker.crash()
                self._forget_early(name)
                return f"{name} died holding {lost or 'nothing'}"
            case ["pause", name, "for", seconds] if name in self.workers:
                worker = self.workers[name]
                worker.paused_until = now + timedelta(seconds=int(seconds.rstrip("s")))
                return f"{name} frozen until t={_seconds(self.clock, worker.paused_until)}"
            case ["clock", jump]:
                self.clock.advance(timedelta(seconds=int(jump.strip("+s"))))
                return "time jumped"
            case ["sink", "fails", "next", count]:
                self.sink.failing = int(count)
                return "sink down"
            case ["slow", slot, "for", seconds]:
                name, _, index = slot.partition("/s")
                work = self.workers[name].slots.get(int(index)) if name in self.workers else None
                if work is None or work.op != "finish" or work.ready_at is not None:
                    return None
                work.ready_at = now + timedelta(seconds=int(seconds.rstrip("s")))
                return "stage code still running"
            case ["store", "fails", "after", count, _]:
                self.store.fail_after = int(count)
                return "next write will fail"
            case ["stale", *operation] if " ".join(operation) in self.choices():
                self.early[" ".join(operation)] = self.store.snapshot()
                return f"{' '.join(operation)} reads the store now, commits later"
            case ["answer", "lost", "after", count, _]:
                self.store.lose_answer = int(count)
                return f"the answer of the commit after {count} more will be lost"
            case ["message", job_name, "twice"]:
                self.client.messages += [job_name, job_name]
                return f"{SERVERLESS} will get {job_name}'s queue message twice"
            case ["provider", *what]:
                return self.providers.arm(what)
        return None

    def heal_key(self) -> str:
        """The key that stops the faults and brings back every worker (``w1`` if none)."""
        return " ".join(["heal", *(sorted(self.workers) or ["w1"])])

    def heal(self, names: Sequence[str] = ()) -> str:
        """Faults stop: ``names`` (workers) are back, paused workers resume, the sink
        and the store work again."""
        for name in names:
            self.worker(name)
        if self.healed_at is None:
            self.healed_at = self.clock.now()
        for worker in self.workers.values():
            worker.paused_until = None
        self.sink.failing = 0
        self.store.fail_after = None
        self.store.lose_answer = None
        self.providers.heal()
        self.early.clear()
        return "faults stop; every worker is back"

    def fault_targets(self) -> dict[str, list[str]]:
        """What each kind of fault could hit now: workers, and slots running a stage's code."""
        now = self.clock.now()
        live = [n for n, w in sorted(self.workers.items()) if w.started and not w.paused(now)]
        slots = [
            f"{name}/s{index}"
            for name in live
            for index, work in sorted(self.workers[name].slots.items())
            if work.op == "finish" and work.ready_at is None
        ]
        operations = [
            key
            for key in self.choices()
            if key.startswith(tuple(f"{name} tick " for name in live))
            or (key.split(" ")[0] in slots_of(live) and key.split(" ")[1] in ("lease", "finish"))
        ]
        runs: dict[str, list[str]] = {"created": [], "running": [], "finished": [], "queued": []}
        for run_id, name in sorted(self.names.items(), key=lambda item: _run_order(item[1])):
            run = self.store.tables.runs[run_id]
            runs["created"].append(name)
            runs["finished" if run.status in RERUNNABLE else "running"].append(name)
        for job in self.store.tables.jobs.values():
            if job.status == JobStatus.QUEUED and job.workflow_run_id in self.names:
                runs["queued"].append(self.job_name(job))
        runs["resignals"] = self.client.outside.resendable()
        return {"workers": live, "slots": slots, "operations": operations, **runs}

    def stages_of(self, name: str) -> list[str]:
        """The stage ids of run ``name``'s workflow, in order."""
        run_id = self.client.by_name(name)
        run = None if run_id is None else self.store.get_run(run_id)
        workflow = None if run is None else self.workflows.get(run.workflow_id)
        return [] if workflow is None else [s.id for group in workflow.groups for s in group]


RERUNNABLE = (Status.COMPLETED, Status.FAILED)


def _run_order(name: str) -> tuple[int, int, str]:
    """The client's runs (``r3``) in creation order, then the schedules' by name."""
    return (0, int(name[1:]), "") if name[1:].isdigit() else (1, 0, name)


def slots_of(workers: Sequence[str]) -> set[str]:
    return {f"{name}/s{index}" for name in workers for index in range(SETTINGS.concurrency)}


def _seconds(clock: FakeClock, when: datetime) -> str:
    return f"{(when - START).total_seconds():.3f}s"


def stamp(clock: FakeClock) -> str:
    """The trace's time: seconds since the simulation started."""
    return f"t={(clock.now() - START).total_seconds():.3f}s"


__all__ = ["SETTINGS", "START", "Act", "FlakySink", "Setup", "Violation", "World", "stamp"]
