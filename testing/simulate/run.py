"""``simulate`` and ``replay``: the seeded scheduler, the liveness phase, and shrinking."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from kernel.workflows import Workflow
from testing.simulate.faults import DEFAULT_FAULTS, DEFAULT_TIMING, KINDS, FaultPlan, Timing
from testing.simulate.invariants import Predicate, Violation
from testing.simulate.results import SimulationFailure, SimulationResult, key_of, load_trace
from testing.simulate.world import START, Act, World, stamp

Inputs = Callable[[random.Random, Workflow[Any, Any]], Mapping[str, Any]]

LIVENESS_STEPS = 10_000
"""Steps the liveness phase may take after the faults stop, at most."""

NOT_REPLAYED = (
    "the schedule did not break the invariant again when replayed: a stage (or an "
    "invariant) may read the real time or real randomness, or keep state between calls"
)

CREATE_BACKOFF = timedelta(seconds=5)
"""How long the client waits before sending a failed ``run.create`` again."""

SHRINK_SECONDS = 10.0
"""How long shrinking a failure may take."""


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
) -> SimulationResult:
    """Run ``runs`` runs of ``workflows`` on ``workers`` virtual workers from one seed.

    ``steps`` steps with faults, then a liveness phase without them until every
    run is terminal, no job is leased and the outbox is drained. Invariants
    (and ``invariants``, callables given the store) are checked after every step.

    Raises:
        SimulationFailure: an invariant broke; it carries the seed, the
            invariant, the full schedule and a shrunk one.
        TypeError: a workflow's input has fields without defaults and no
            ``inputs`` was given.
    """
    if not workflows:
        raise TypeError("simulate: pass at least one workflow")
    defaults = {w.id: _default_input(w) for w in workflows} if inputs is None else {}
    rng = random.Random(seed)
    rates = faults.draw(rng)
    creates: list[str] = []
    for number in range(1, runs + 1):
        workflow = workflows[rng.randrange(len(workflows))]
        data = dict(inputs(rng, workflow)) if inputs is not None else defaults[workflow.id]
        creates.append(World.create_key(f"r{number}", workflow.id, data))
    world = World(workflows, invariants=invariants, timing=timing)
    for number in range(1, workers + 1):
        world.worker(f"w{number}")
    trace: list[str] = []
    try:
        _schedule(world, rng, rates, creates, trace, steps)
    except Violation as violation:
        shrunk, broke = _shrink(
            workflows, trace, str(violation), invariants, timing, shrink_seconds
        )
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
) -> SimulationResult:
    """Re-run a schedule (a trace's lines, or a file ``save`` wrote) and check it again.

    Lines that cannot happen any more (a shrunk schedule left out what enabled
    them) are skipped. After the last line the faults stop and the liveness
    phase runs, with a fixed generator.

    Raises:
        SimulationFailure: the schedule breaks an invariant (its ``shrunk`` is the
            schedule as replayed).
    """
    seed: int | None = None
    if isinstance(trace, str | Path):
        seed, lines = load_trace(trace)
    else:
        lines = list(trace)
    done: list[str] = []
    try:
        _replay(workflows, lines, invariants, timing, done)
    except Violation as violation:
        raise SimulationFailure(seed, str(violation), done, done) from None
    return SimulationResult(seed, len(done), done)


# -- the scheduler ---------------------------------------------------------------------


def _schedule(
    world: World,
    rng: random.Random,
    rates: Mapping[str, float] | None,
    creates: list[str],
    trace: list[str],
    steps: int,
) -> None:
    """Step until the liveness phase ends: every run terminal and everything drained."""
    healed_at = world.healed_at
    cost_ms = world.timing.step_cost_ms
    backoff: dict[str, datetime] = {}
    """When each create that failed may be sent again."""
    while True:
        quiet = not creates and world.checker.unfinished() is None
        if healed_at is None and (len(trace) >= steps or quiet):
            _do(world, trace, world.heal_key())
            healed_at = world.clock.now()
        if healed_at is not None:
            if quiet:
                return
            if world.clock.now() > healed_at + world.timing.liveness or (
                len(trace) >= steps + LIVENESS_STEPS
            ):
                raise Violation(f"liveness: after the faults stopped, {world.checker.unfinished()}")
        world.clock.advance(timedelta(milliseconds=rng.randint(0, cost_ms)))
        choices = world.choices()
        now = world.clock.now()
        ready = [key for key in creates if backoff.get(key, now) <= now][:1]
        keys = [*choices, *ready]
        if not keys:
            due = min(
                [t for t in (world.due(), *backoff.values()) if t is not None and t > now],
                default=None,
            )
            if due is None:
                if healed_at is not None:
                    raise Violation(
                        f"liveness: nothing left to do, but {world.checker.unfinished()}"
                    )
                _do(world, trace, world.heal_key())
                healed_at = world.clock.now()
            else:
                world.clock.set(due)
            continue
        key = _fault(world, rng, rates) if healed_at is None and rates else None
        if key is None:
            key = keys[rng.randrange(len(keys))]
        _do(world, trace, key, choices)
        if ready and key == ready[0]:
            if world.created(key):
                creates.remove(key)
                backoff.pop(key, None)
            else:  # the client tries again a little later; the next create goes first
                backoff[key] = world.clock.now() + CREATE_BACKOFF


def _do(world: World, trace: list[str], key: str, choices: dict[str, Act] | None = None) -> bool:
    """Carry out one step, record it, and check the invariants; ``False``: it cannot happen."""
    when = stamp(world.clock)
    outcome = world.execute(key, choices)
    if outcome is None:
        return False
    create = key.startswith("client create ") and not outcome.startswith("failed")
    trace.append(f"{when} {key}" if create else f"{when} {key}: {outcome}")
    world.check()
    return True


def _fault(world: World, rng: random.Random, rates: Mapping[str, float]) -> str | None:
    """A fault's key, with the seed's chance of each kind; ``None`` most of the time."""
    draw = rng.random()
    for kind in KINDS:
        draw -= rates[kind]
        if draw < 0:
            break
    else:
        return None
    targets = world.fault_targets()
    stale = int(world.timing.stale_threshold.total_seconds())
    match kind:
        case "crash" | "pause" if targets["workers"]:
            name = rng.choice(targets["workers"])
            if kind == "crash":
                return f"fault crash {name}"
            return f"fault pause {name} for {stale + rng.randint(1, stale)}s"
        case "clock_jump":
            return f"fault clock +{stale + rng.randint(1, 30)}s"
        case "sink_failure":
            return f"fault sink fails next {rng.randint(1, 5)}"
        case "slow_stage" if targets["slots"]:
            return f"fault slow {rng.choice(targets['slots'])} for {rng.randint(5, 3 * stale)}s"
        case "store_failure":
            count = rng.randint(0, 3)
            return f"fault store fails after {count} {'effect' if count == 1 else 'effects'}"
        case "stale_read" if targets["operations"]:
            return f"fault stale {rng.choice(targets['operations'])}"
        case "ambiguous_commit":
            count = rng.randint(0, 2)
            return f"fault answer lost after {count} {'commit' if count == 1 else 'commits'}"
        case "duplicate" if targets["created"] or targets["queued"]:
            if targets["queued"] and (not targets["created"] or rng.random() < 0.5):
                return f"fault message {rng.choice(targets['queued'])} twice"
            return f"client resend {rng.choice(targets['created'])}"
        case "cancel" if targets["running"]:
            return f"client cancel {rng.choice(targets['running'])}"
        case "rerun" if targets["finished"]:
            name = rng.choice(targets["finished"])
            stages = world.stages_of(name)
            return f"client rerun {name} from {rng.choice(stages)}" if stages else None
    return None


# -- replay and shrinking ---------------------------------------------------------------


def _replay(
    workflows: Sequence[Workflow[Any, Any]],
    lines: Sequence[str],
    invariants: Sequence[Predicate],
    timing: Timing,
    done: list[str],
) -> None:
    world = World(workflows, invariants=invariants, timing=timing)
    for line in lines:
        seconds, key = key_of(line)
        when, before = START + timedelta(seconds=seconds), world.clock.now()
        if world.healed_at is not None:
            # Healed workers are never idle for long: a schedule whose steps were
            # deleted does not make time jump further than the scheduler would.
            due = before if world.choices() else (world.due() or before)
            when = min(when, max(due, before) + timedelta(milliseconds=world.timing.step_cost_ms))
        if when > before:
            world.clock.set(when)
        for name in _workers_named(key):
            world.worker(name)
        if not _do(world, done, key):
            world.clock.set(before)  # a step that cannot happen takes no time either
    _schedule(world, random.Random(0), None, [], done, steps=len(done))


def _workers_named(key: str) -> list[str]:
    """The worker a ``wN start`` key starts (a worker exists once a line starts it)."""
    words = key.split(" ")
    if len(words) == 2 and words[1] == "start" and words[0][:1] == "w" and words[0][1:].isdigit():
        return [words[0]]
    return []


def _until_heal(lines: list[str]) -> list[str]:
    """The lines up to the one that stopped the faults, included."""
    for index, line in enumerate(lines):
        if key_of(line)[1].split(" ")[0] == "heal":
            return lines[: index + 1]
    return lines


def _kind(invariant: str) -> str:
    return invariant.split(": ", 1)[0]


def _shrink(
    workflows: Sequence[Workflow[Any, Any]],
    trace: list[str],
    invariant: str,
    invariants: Sequence[Predicate],
    timing: Timing,
    seconds: float,
) -> tuple[list[str], str | None]:
    """Delete chunks of steps, then whole runs, workers and kinds of fault, while the
    same invariant still breaks, until nothing changes or ``seconds`` ran out.
    Returns the shrunk schedule and the message it breaks the invariant with; ``None``:
    the full schedule itself did not break it again (nothing is shrunk)."""
    deadline = time.monotonic() + seconds
    liveness = _kind(invariant) == "liveness"

    broke: list[str] = []

    def still_fails(lines: list[str]) -> list[str] | None:
        done: list[str] = []
        try:
            _replay(workflows, lines, invariants, timing, done)
        except Violation as violation:
            if _kind(str(violation)) != _kind(invariant):
                return None
            broke[:] = [str(violation)]
            # A liveness failure's schedule ends where the faults stop: the rest is
            # what the replay's own fair scheduler does.
            return _until_heal(done) if liveness else done
        return None

    if still_fails(list(trace)) is None:
        return list(trace), None
    best = (still_fails(_until_heal(trace)) if liveness else None) or list(trace)
    while time.monotonic() < deadline:
        size = len(best)
        best = _drop_groups(_delete_chunks(best, still_fails, deadline), still_fails, deadline)
        if len(best) == size:
            break
    still_fails(best)  # the message of the shrunk schedule itself (it names its runs)
    return best, broke[0]


def _delete_chunks(
    best: list[str], still_fails: Callable[[list[str]], list[str] | None], deadline: float
) -> list[str]:
    """Delete chunks of steps, halving the chunk, while the same invariant still breaks."""
    chunk = max(len(best) // 2, 1)
    while time.monotonic() < deadline:
        start, changed = 0, False
        while start < len(best) and time.monotonic() < deadline:
            found = still_fails(best[:start] + best[start + chunk :])
            if found is not None and len(found) < len(best):
                best, changed = found, True
            else:
                start += chunk
        if chunk == 1 and not changed:
            break
        chunk = max(chunk // 2, 1) if not changed else chunk
    return best


def _drop_groups(
    best: list[str], still_fails: Callable[[list[str]], list[str] | None], deadline: float
) -> list[str]:
    """Delete every step of one run, one worker or one kind of fault at once, while the
    same invariant still breaks."""
    changed = True
    while changed and time.monotonic() < deadline:
        changed = False
        for pattern in _groups(best):
            kept = [line for line in best if not re.search(pattern, key_of(line)[1])]
            if len(kept) == len(best) or time.monotonic() >= deadline:
                continue
            found = still_fails(kept)
            if found is not None and len(found) < len(best):
                best, changed = found, True
                break
    return best


def _groups(lines: list[str]) -> list[str]:
    """Patterns of keys: each run (``r3``), each worker's own steps, each kind of fault."""
    keys = [key_of(line)[1] for line in lines]
    runs = sorted(
        {m for key in keys for m in re.findall(r"\br\d+\b", key)}, key=lambda r: int(r[1:])
    )
    workers = sorted({key.split("/")[0].split(" ")[0] for key in keys if re.match(r"w\d+", key)})
    faults = sorted({key.split(" ")[1] for key in keys if key.startswith("fault ")})
    return [
        *(rf"\b{run}\b" for run in runs),
        *(rf"^{worker}[/ ]" for worker in workers),
        *(rf"^fault {kind} " for kind in faults),
    ]


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
