"""The seeded scheduler: pick the next step among everything that may happen now (and
a fault now and then), carry it out, record it, check the invariants; then the
liveness phase."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta

from testing.simulate.faults import KINDS
from testing.simulate.providers import AI_FAULTS, BATCH_FAULTS
from testing.simulate.violation import Violation
from testing.simulate.world import Act, World, stamp

LIVENESS_STEPS = 10_000
"""Steps the liveness phase may take after the faults stop, at most."""

CREATE_BACKOFF = timedelta(seconds=5)
"""How long the client waits before sending a failed ``run.create`` again."""


def drive(
    world: World,
    rng: random.Random,
    rates: Mapping[str, float] | None,
    creates: list[str],
    trace: list[str],
    steps: int,
    until: datetime | None = None,
) -> None:
    """Step until the liveness phase ends: every run terminal and everything drained
    (or, given ``until``, the clock passed it)."""
    healed_at = world.healed_at
    cost_ms = world.timing.step_cost_ms
    backoff: dict[str, datetime] = {}
    """When each create that failed may be sent again."""
    while until is None or world.clock.now() <= until:
        quiet = not creates and world.unfinished() is None
        if healed_at is None and (len(trace) >= steps or quiet):
            do(world, trace, world.heal_key())
            healed_at = world.clock.now()
        if healed_at is not None:
            if quiet:
                return
            if world.clock.now() > healed_at + world.timing.liveness or (
                len(trace) >= steps + LIVENESS_STEPS
            ):
                raise Violation(f"liveness: after the faults stopped, {world.unfinished()}")
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
                    raise Violation(f"liveness: nothing left to do, but {world.unfinished()}")
                do(world, trace, world.heal_key())
                healed_at = world.clock.now()
            else:
                world.clock.set(due)
            continue
        key = _fault(world, rng, rates) if healed_at is None and rates else None
        if key is None:
            key = keys[rng.randrange(len(keys))]
        do(world, trace, key, choices)
        if ready and key == ready[0]:
            if world.created(key):
                creates.remove(key)
                backoff.pop(key, None)
            else:  # the client tries again a little later; the next create goes first
                backoff[key] = world.clock.now() + CREATE_BACKOFF


def do(world: World, trace: list[str], key: str, choices: dict[str, Act] | None = None) -> bool:
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
        case "duplicate" if targets["created"] or targets["queued"] or targets["resignals"]:
            if targets["resignals"] and rng.random() < 1 / 3:
                return rng.choice(targets["resignals"])
            if not targets["created"] and not targets["queued"]:
                return None
            if targets["queued"] and (not targets["created"] or rng.random() < 0.5):
                return f"fault message {rng.choice(targets['queued'])} twice"
            return f"client resend {rng.choice(targets['created'])}"
        case "cancel" if targets["running"]:
            return f"client cancel {rng.choice(targets['running'])}"
        case "rerun" if targets["finished"]:
            name = rng.choice(targets["finished"])
            stages = world.stages_of(name)
            return f"client rerun {name} from {rng.choice(stages)}" if stages else None
        case "provider":
            return _provider_fault(world, rng)
    return None


def _provider_fault(world: World, rng: random.Random) -> str | None:
    """A ``fault provider ...`` key for the providers the stages use (none: ``None``)."""
    what = [
        *(AI_FAULTS if world.kernel.ai_config is not None else ()),
        *(BATCH_FAULTS if world.kernel.batch_providers else ()),
    ]
    if not what:
        return None
    fault = rng.choice(what)
    return (
        f"fault provider {fault} {rng.randint(1, 3)}"
        if fault.endswith(" next")
        else (f"fault provider {fault}")
    )
