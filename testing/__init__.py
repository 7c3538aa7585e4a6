"""The testing kit users import in their own tests (SPEC §9)."""

from testing.clock import FakeClock
from testing.ids import NoopScheduler, SequentialIds
from testing.kernel import TestKernel, create_test_kernel
from testing.sinks import CollectingEventSink

__all__ = [
    "CollectingEventSink",
    "FakeClock",
    "NoopScheduler",
    "SequentialIds",
    "TestKernel",
    "create_test_kernel",
]
