"""What can go wrong in a simulation, and how often (SPEC §17).

A :class:`FaultPlan` gives, per kind of fault, the highest chance that one is
injected at a step. Each seed draws its own rate for each kind between zero
and that ceiling, and leaves some kinds out altogether ("swarm testing"): a
seed with many crashes and no sink failures explores other schedules than a
seed with a little of everything.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from datetime import timedelta

from attrs import Attribute, field, frozen

KINDS = (
    "crash",
    "pause",
    "clock_jump",
    "sink_failure",
    "slow_stage",
    "store_failure",
    "stale_read",
    "ambiguous_commit",
    "duplicate",
    "cancel",
    "rerun",
    "provider",
)
"""The kinds of fault, in the order a seed draws their rates."""


def _rate(_: object, attribute: Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"FaultPlan.{attribute.name}: expected a rate in 0..1, got {value!r}")


@frozen(kw_only=True)
class FaultPlan:
    """The highest chance per step of each kind of fault; ``FaultPlan.none()`` injects none.

    * ``crash``: a worker dies between two commits; its state is dropped and it
      restarts as a new incarnation (its leases stay until another worker reaps them).
    * ``pause``: a worker stops for longer than the stale threshold (a GC pause, a
      frozen VM): it renews nothing, its leases may be reaped, and its late finish
      must be refused.
    * ``clock_jump``: the clock jumps past the stale threshold at once.
    * ``sink_failure``: the event sink fails the next few deliveries (the outbox retries).
    * ``slow_stage``: a stage's code takes long (the worker renews its lease meanwhile).
    * ``store_failure``: the next write transaction fails after some of its effects
      were applied (the store must roll all of them back).
    * ``stale_read``: an operation reads the store now and commits later; other
      actors may commit in between, and a row it writes that changed meanwhile
      fails its commit (optimistic concurrency: the kernel loads and decides again).
    * ``ambiguous_commit``: the next write transaction commits, but its caller sees
      an error (the connection dropped during ``COMMIT``) and goes on as if it failed.
    * ``duplicate``: a command or a message is delivered twice: the client sends a
      run's ``run.create`` (with its idempotency key) again, or a serverless
      function gets a job's queue message a second time.
    * ``cancel``, ``rerun``: the client cancels a run, or reruns a finished one
      from one of its stages.
    * ``provider``: an AI or batch provider fails (``simulate(ai=..., batch_providers=...)``
      only): a rate limit, an answer lost after the provider did the work, a batch
      submission the provider accepted but whose answer was lost, a worker that dies
      right after the provider accepted its batch, a failing status check or cancel.

    ``swarm``: the chance that a seed leaves a kind out altogether.
    """

    crash: float = field(default=0.01, validator=_rate)
    pause: float = field(default=0.005, validator=_rate)
    clock_jump: float = field(default=0.003, validator=_rate)
    sink_failure: float = field(default=0.01, validator=_rate)
    slow_stage: float = field(default=0.01, validator=_rate)
    store_failure: float = field(default=0.005, validator=_rate)
    stale_read: float = field(default=0.02, validator=_rate)
    ambiguous_commit: float = field(default=0.003, validator=_rate)
    duplicate: float = field(default=0.005, validator=_rate)
    cancel: float = field(default=0.002, validator=_rate)
    rerun: float = field(default=0.002, validator=_rate)
    provider: float = field(default=0.01, validator=_rate)
    swarm: float = field(default=0.3, validator=_rate)

    @classmethod
    def none(cls) -> FaultPlan:
        """A plan that injects nothing: the schedule alone is explored."""
        return cls(**dict.fromkeys(KINDS, 0.0))

    def draw(self, rng: random.Random, without: Collection[str] = ()) -> dict[str, float]:
        """This seed's rate per kind: each between 0 and its ceiling, or 0 when swarmed out.
        Kinds ``without`` (that cannot happen: ``provider`` with no providers) are 0 and
        draw nothing, so adding a kind leaves the seeds of simulations without it as
        they were."""
        rates: dict[str, float] = {}
        for kind in KINDS:
            if kind in without:
                rates[kind] = 0.0
                continue
            ceiling: float = getattr(self, kind)
            left_out = rng.random() < self.swarm
            rates[kind] = 0.0 if left_out or ceiling == 0 else rng.uniform(0, ceiling)
        return rates


@frozen(kw_only=True)
class Timing:
    """The virtual durations of a simulation; every lease rule is tested against these."""

    stale_threshold: timedelta = timedelta(seconds=60)
    """A lease not renewed for this long is reaped (the hosts' ``stale_lease_threshold``)."""
    step_cost_ms: int = 100
    """Each step takes between 0 and this many virtual milliseconds."""
    liveness: timedelta = timedelta(minutes=10)
    """After the faults stop, every run must be terminal within this virtual time."""
    idempotency_timeout: timedelta = timedelta(minutes=2)
    """A key held by a command whose answer was lost may be taken over after this long."""
    schedule_lifetime: timedelta = timedelta(seconds=90)
    """How long after the client upserts a schedule it deletes it again (``schedules=``)."""
    signal_wait: timedelta = timedelta(minutes=2)
    """The longest the client waits before sending a signal, but past a stage's
    ``timeout`` (only one no longer than this is ever reached)."""


DEFAULT_FAULTS = FaultPlan()
DEFAULT_TIMING = Timing()
