"""The pytest plugin the package ships (entry point ``pytest11``, SPEC §17 and §9).

Installed with ``workflow-kernel``, pytest loads it by itself. It gives:

* fixtures for the testing kit: ``fake_clock`` (a :class:`~testing.FakeClock`),
  ``collected_events`` (a :class:`~testing.CollectingEventSink`) and
  ``wfk_kernel``, a factory ``wfk_kernel(*workflows, **kwargs)`` of test
  kernels on that clock and sink (:func:`~testing.create_test_kernel`);
* seeds for simulation tests: a test that takes ``wfk_seed`` runs once per
  seed, each its own test (``test_orders[seed=7]``); one that takes
  ``wfk_seeds`` gets the list. ``pytest --wfk-seeds N`` asks for seeds
  ``0..N-1``, ``pytest --wfk-seed S`` for seed ``S`` alone (to replay a
  failure); without either, a test gets ``@pytest.mark.wfk_seeds(N)``'s
  count, else :data:`DEFAULT_SEEDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kernel.workflows import Workflow
    from testing.clock import FakeClock
    from testing.kernel import TestKernel
    from testing.sinks import CollectingEventSink

DEFAULT_SEEDS = 10
"""Seeds a simulation test runs when neither the command line nor a marker says."""

MARKER = "wfk_seeds(count): how many seeds this simulation test runs without --wfk-seeds"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wfk", "workflow-kernel simulation")
    group.addoption(
        "--wfk-seeds",
        type=_count,
        default=None,
        metavar="N",
        help="run simulation tests (those taking wfk_seed or wfk_seeds) on seeds 0..N-1",
    )
    group.addoption(
        "--wfk-seed",
        type=_seed,
        default=None,
        metavar="S",
        help="run simulation tests on seed S only (replay one failing seed)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


def seeds_for(config: pytest.Config, marker: pytest.Mark | None = None) -> list[int]:
    """The seeds a simulation test runs: ``--wfk-seed``, ``--wfk-seeds``, the marker's
    count, or :data:`DEFAULT_SEEDS`, in that order."""
    one: int | None = config.getoption("wfk_seed")
    if one is not None:
        return [one]
    count: int | None = config.getoption("wfk_seeds")
    if count is None and marker is not None:
        count = _count(marker.args[0] if marker.args else marker.kwargs.get("count"))
    return list(range(DEFAULT_SEEDS if count is None else count))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "wfk_seed" in metafunc.fixturenames:
        seeds = seeds_for(metafunc.config, metafunc.definition.get_closest_marker("wfk_seeds"))
        metafunc.parametrize("wfk_seed", seeds, ids=[f"seed={seed}" for seed in seeds])


@pytest.fixture
def wfk_seeds(request: pytest.FixtureRequest) -> list[int]:
    """The seeds this simulation test runs (``--wfk-seeds N``, ``--wfk-seed S``)."""
    return seeds_for(request.config, request.node.get_closest_marker("wfk_seeds"))


@pytest.fixture
def fake_clock() -> FakeClock:
    """A :class:`~testing.FakeClock` at its default start; ``wfk_kernel``'s clock."""
    from testing.clock import FakeClock

    return FakeClock()


@pytest.fixture
def collected_events() -> CollectingEventSink:
    """A :class:`~testing.CollectingEventSink`; ``wfk_kernel``'s sink."""
    from testing.sinks import CollectingEventSink

    return CollectingEventSink()


@pytest.fixture
def wfk_kernel(
    fake_clock: FakeClock, collected_events: CollectingEventSink
) -> Callable[..., TestKernel[FakeClock, CollectingEventSink]]:
    """``wfk_kernel(*workflows, **kwargs)``: a test kernel on ``fake_clock`` and
    ``collected_events`` (``kwargs`` as :func:`~testing.create_test_kernel` takes them)."""
    from testing.kernel import create_test_kernel

    def make(
        *workflows: Workflow[Any, Any], **kwargs: Any
    ) -> TestKernel[FakeClock, CollectingEventSink]:
        return create_test_kernel(*workflows, clock=fake_clock, sink=collected_events, **kwargs)

    return make


def _count(value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"--wfk-seeds: expected a whole number of seeds >= 1, got {value!r}")
    return value


def _seed(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"--wfk-seed: expected a whole number, got {value!r}") from None
