"""Deterministic simulation: the real kernel and hosts' step function under a seeded
scheduler, with injected faults and invariants checked after every step (SPEC §17).

See docs/simulation.md.
"""

from testing.simulate.faults import FaultPlan, Timing
from testing.simulate.results import SimulationFailure, SimulationResult
from testing.simulate.run import replay, simulate

__all__ = ["FaultPlan", "SimulationFailure", "SimulationResult", "Timing", "replay", "simulate"]
