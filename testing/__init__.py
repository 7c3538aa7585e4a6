"""The testing kit users import in their own tests (SPEC §9)."""

from testing.ai import FakeAIProvider
from testing.batch import FakeBatchProvider, SimulatedCrash
from testing.clock import FakeClock
from testing.ids import NoopScheduler, SequentialIds
from testing.kernel import TestKernel, create_test_kernel
from testing.simulate import (
    FaultPlan,
    SimulationFailure,
    SimulationResult,
    replay,
    simulate,
)
from testing.sinks import CollectingEventSink

__all__ = [
    "CollectingEventSink",
    "FakeAIProvider",
    "FakeBatchProvider",
    "FakeClock",
    "FaultPlan",
    "NoopScheduler",
    "SequentialIds",
    "SimulatedCrash",
    "SimulationFailure",
    "SimulationResult",
    "TestKernel",
    "create_test_kernel",
    "replay",
    "simulate",
]
