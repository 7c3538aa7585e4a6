"""``simulate`` and ``replay``: the seeded scheduler, the liveness phase, and shrinking."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

from kernel.ai.config import AIConfig
from kernel.ai.ports import BatchProvider
from kernel.schedules import Schedule
from kernel.workflows import Workflow
from testing.simulate.faults import DEFAULT_FAULTS, DEFAULT_TIMING, FaultPlan, Timing
from testing.simulate.invariants import Predicate
from testing.simulate.outside import SignalPayloads
from testing.simulate.results import SimulationFailure, SimulationResult, load_trace
from testing.simulate.scheduler import drive
from testing.simulate.shrink import replay_lines, shrink
from testing.simulate.violation import Violation
from testing.simulate.world import START, Setup, World

Inputs = Callable[[random.Random, Workflow[Any, Any]], Mapping[str, Any]]

NOT_REPLAYED = (
    "the schedule did not break the invariant again when replayed: a stage (or an "
    "invariant) may read the real time or real randomness, or keep state between calls"
)

SHRINK_SECONDS = 10.0
"""How long shrinking a failure may take."""

UPSERT_WITHIN = 10.0
"""The client upserts each schedule within this many seconds of the start."""


def simulate(
    *workflows: Workflow[Any, Any],
    seed: int,
    runs: int = 20,
    workers: int = 3,
    steps: int = 2000,
    faults: FaultPlan = DEFAULT_FAULTS,
    invariants: Sequence[Predicate] = (),
    inputs: Inputs | None = None,
    timing: Timing = DEFAULT_TIMING,
    shrink_seconds: float = SHRINK_SECONDS,
    signals: SignalPayloads | None = None,
    schedules: Sequence[Schedule] = (),
    ai: Callable[[], AIConfig] | None = None,
    batch_providers: Callable[[], Sequence[BatchProvider]] | None = None,
) -> SimulationResult:
    """Run ``runs`` runs of ``workflows`` on ``workers`` virtual workers from one seed.

    ``steps`` steps with faults, then a liveness phase without them until every
    run is terminal, no job is leased and the outbox is drained. Invariants
    (and ``invariants``, callables given the store) are checked after every step.

    The client also sends each run's signals (``signals``: a callable
    ``(rng, workflow, signal) -> payload``, needed when a payload type has fields
    without defaults) and upserts ``schedules``, deleting each again
    ``timing.schedule_lifetime`` later. ``ai`` and ``batch_providers`` make the
    ``AIConfig`` and batch providers the stages use (functions, called for every
    run and replay, so that stateful fakes start afresh); ``provider`` faults fail
    them.

    Raises:
        SimulationFailure: an invariant broke; it carries the seed, the
            invariant, the full schedule and a shrunk one.
        TypeError: a workflow's input (or a signal's payload) has fields without
            defaults and no ``inputs`` (``signals``) was given.
    """
    if not workflows:
        raise TypeError("simulate: pass at least one workflow")
    defaults = {w.id: _default_input(w) for w in workflows} if inputs is None else {}
    missing = _needs_payloads(workflows) if signals is None else None
    if missing is not None:
        raise TypeError(missing)
    setup = Setup(
        workflows=workflows,
        invariants=invariants,
        timing=timing,
        signals=signals,
        schedules=schedules,
        ai=ai,
        batch_providers=batch_providers,
    )
    rng = random.Random(seed)
    rates = faults.draw(rng, without=() if ai or batch_providers else ("provider",))
    creates: list[str] = []
    for number in range(1, runs + 1):
        workflow = workflows[rng.randrange(len(workflows))]
        data = dict(inputs(rng, workflow)) if inputs is not None else defaults[workflow.id]
        creates.append(World.create_key(f"r{number}", workflow.id, data))
    world = World(setup)
    for schedule in schedules:
        upsert_ms = round(rng.uniform(0, UPSERT_WITHIN) * 1000)
        world.client.outside.plan_upsert(schedule.id, START + timedelta(milliseconds=upsert_ms))
    for number in range(1, workers + 1):
        world.worker(f"w{number}")
    trace: list[str] = []
    try:
        drive(world, rng, rates, creates, trace, steps)
    except Violation as violation:
        shrunk, broke = shrink(setup, trace, str(violation), shrink_seconds)
        raise SimulationFailure(
            seed,
            str(violation),
            trace,
            shrunk,
            shrunk_invariant=broke,
            note=None if broke else NOT_REPLAYED,
        ) from None
    return SimulationResult(seed, len(trace), trace)


def replay(
    *workflows: Workflow[Any, Any],
    trace: Sequence[str] | str | Path,
    invariants: Sequence[Predicate] = (),
    timing: Timing = DEFAULT_TIMING,
    signals: SignalPayloads | None = None,
    schedules: Sequence[Schedule] = (),
    ai: Callable[[], AIConfig] | None = None,
    batch_providers: Callable[[], Sequence[BatchProvider]] | None = None,
) -> SimulationResult:
    """Re-run a schedule (a trace's lines, or a file ``save`` wrote) and check it again.

    Lines that cannot happen any more (a shrunk schedule left out what enabled
    them) are skipped. After the last line the faults stop and the liveness
    phase runs, with a fixed generator. Give it what the simulation was given
    (``signals``, ``schedules``, ``ai``, ``batch_providers``).

    Raises:
        SimulationFailure: the schedule breaks an invariant (its ``shrunk`` is the
            schedule as replayed).
    """
    seed: int | None = None
    if isinstance(trace, str | Path):
        seed, lines = load_trace(trace)
    else:
        lines = list(trace)
    setup = Setup(
        workflows=workflows,
        invariants=invariants,
        timing=timing,
        signals=signals,
        schedules=schedules,
        ai=ai,
        batch_providers=batch_providers,
    )
    done: list[str] = []
    try:
        replay_lines(setup, lines, done)
    except Violation as violation:
        raise SimulationFailure(seed, str(violation), done, done) from None
    return SimulationResult(seed, len(done), done)


def _default_input(workflow: Workflow[Any, Any]) -> dict[str, Any]:
    kind = workflow.input_type
    if attrs.has(kind):
        missing = [a.name for a in attrs.fields(kind) if a.default is attrs.NOTHING]
        if not missing:
            return {}
        fields = ", ".join(missing)
        why = f"its input {kind.__name__} has fields without defaults ({fields})"
    else:
        why = f"its input type {kind!r} is not an attrs class with defaults"
    raise TypeError(
        f"simulate: workflow {workflow.id!r} needs inputs: {why}; pass "
        "inputs=lambda rng, workflow: {...} giving each run's input"
    )


def _needs_payloads(workflows: Sequence[Workflow[Any, Any]]) -> str | None:
    """Why ``simulate`` needs ``signals=``: a signal's payload type has required fields."""
    for workflow in workflows:
        for stage in workflow.stages:
            kind = stage.output_type
            if stage.signal is None:
                continue
            if attrs.has(kind) and all(a.default is not attrs.NOTHING for a in attrs.fields(kind)):
                continue
            return (
                f"simulate: workflow {workflow.id!r} needs signals: the payload of signal "
                f"{stage.signal!r} ({getattr(kind, '__name__', kind)}) has fields without "
                "defaults; pass signals=lambda rng, workflow, signal: {...} giving each payload"
            )
    return None
