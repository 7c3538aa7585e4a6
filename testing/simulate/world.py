"""The simulated world: one kernel, one store, one clock, a client and virtual workers.

Everything that can happen is a *choice* named by a readable key
(``w1/s0 finish r3/extract``, ``client create r4 ...``, ``fault crash w2``);
:meth:`World.execute` carries out one key and says what came of it. The
scheduler (:mod:`testing.simulate.run`) picks keys with the seed's random
generator; a replay reads them back from a trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from adapters.hosts.schedule import Settings
from kernel.commands import RunCreate
from kernel.errors import KernelError, StoreError
from kernel.events import Event
from kernel.records import Job
from kernel.workflows import Workflow
from testing.clock import FakeClock
from testing.kernel import create_test_kernel
from testing.simulate.faults import DEFAULT_TIMING, Timing
from testing.simulate.invariants import Checker, Predicate, Violation
from testing.simulate.store import SimStore
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

    def __init__(
        self,
        workflows: Sequence[Workflow[Any, Any]],
        *,
        invariants: Sequence[Predicate] = (),
        timing: Timing = DEFAULT_TIMING,
    ) -> None:
        self.timing = timing
        self.clock = FakeClock()
        self.store = SimStore()
        self.sink = FlakySink()
        self.kernel = create_test_kernel(
            *workflows, store=self.store, clock=self.clock, sink=self.sink
        ).kernel
        self.workflows = {workflow.id: workflow for workflow in workflows}
        self.names: dict[str, str] = {}
        self.checker = Checker(
            self.store,
            self.names,
            invariants,
            delivered=self.sink.delivered,
            clock=self.clock,
            stale_threshold=timing.stale_threshold,
        )
        self.workers: dict[str, VirtualWorker] = {}
        self.healed_at: datetime | None = None
        """When the faults stopped (``None``: they go on)."""

    # -- names -------------------------------------------------------------------------

    def job_name(self, job: Job) -> str:
        return f"{self.names.get(job.workflow_run_id, job.workflow_run_id)}/{job.stage_id}"

    def worker(self, name: str) -> VirtualWorker:
        """The worker called ``name``, made on first mention (``w1``, ``w2``, ...)."""
        if name not in self.workers:
            stale_ms = int(self.timing.stale_threshold.total_seconds() * 1000)
            self.workers[name] = VirtualWorker(name, self.kernel, SETTINGS, stale_ms, self.job_name)
        return self.workers[name]

    # -- what may happen now ------------------------------------------------------------

    def choices(self) -> dict[str, Act]:
        """Every worker operation that may run now, by key, in key order."""
        now = self.clock.now()
        found: dict[str, Act] = {}
        for name in sorted(self.workers):
            found.update(self.workers[name].choices(now))
        return found

    def due(self) -> datetime | None:
        """When a worker next has something to do, if all of them wait for time."""
        times = [t for w in self.workers.values() if (t := w.due()) is not None]
        later = [t for t in times if t > self.clock.now()]
        return min(later) if later else None

    def execute(self, key: str, choices: dict[str, Act] | None = None) -> str | None:
        """Carry out ``key``; ``None`` if it cannot happen now (a replay skips it).
        ``choices``: :meth:`choices` as computed just before, if at hand."""
        if key.startswith("client create "):
            return self._create(key)
        if key.startswith("fault "):
            return self._fault(key.removeprefix("fault ").split())
        if key == "heal" or key.startswith("heal "):
            return self.heal(key.split(" ")[1:])
        act = (self.choices() if choices is None else choices).get(key)
        return None if act is None else act()

    def check(self) -> None:
        """Raise :class:`Violation` if the last step broke an invariant."""
        self.checker.after_step(self.store.take_changes(), self.workers.values())

    # -- the client ------------------------------------------------------------------------

    @staticmethod
    def create_key(name: str, workflow_id: str, input: Any) -> str:
        data = json.dumps(input, sort_keys=True, separators=(",", ":"), default=str)
        return f"client create {name} {workflow_id} {data}"

    def _create(self, key: str) -> str | None:
        name, workflow_id, data = key.removeprefix("client create ").split(" ", 2)
        if name in self.names.values() or workflow_id not in self.workflows:
            return None
        try:
            created = self.kernel.dispatch(
                RunCreate(workflow_id=workflow_id, input=json.loads(data))
            )
        except StoreError as exc:  # rolled back: the client tries again later
            return f"failed: {exc}"
        except KernelError as exc:
            raise ValueError(
                f"simulate: run {name} of workflow {workflow_id!r} was refused its input "
                f"{data}: {exc} (check inputs=)"
            ) from exc
        self.names[created.workflow_run_id] = name
        return f"run {created.workflow_run_id}"

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
        return {"workers": live, "slots": slots}


def _seconds(clock: FakeClock, when: datetime) -> str:
    return f"{(when - START).total_seconds():.3f}s"


START = FakeClock().now()


def stamp(clock: FakeClock) -> str:
    """The trace's time: seconds since the simulation started."""
    return f"t={(clock.now() - START).total_seconds():.3f}s"


__all__ = ["SETTINGS", "Act", "FlakySink", "Violation", "World", "stamp"]
