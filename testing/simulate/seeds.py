"""Many seeds at once: what ``wfk sim`` and this project's CI run (SPEC §17)."""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from attrs import frozen

from kernel.workflows import Workflow
from testing.simulate.results import SimulationFailure
from testing.simulate.run import Inputs, simulate

SEEDS = re.compile(r"^(?P<first>\d+)(\.\.(?P<last>\d+))?$")


def parse_seeds(text: str) -> range:
    """``0..999`` (both ends included) or one seed ``17``.

    Raises:
        ValueError: ``text`` is neither, or the range is empty.
    """
    found = SEEDS.match(text.strip())
    if found is None:
        raise ValueError(f"--seeds: expected FIRST..LAST (like 0..999) or one seed, got {text!r}")
    first = int(found["first"])
    last = first if found["last"] is None else int(found["last"])
    if last < first:
        raise ValueError(f"--seeds: {text!r} is empty ({last} is before {first})")
    return range(first, last + 1)


def load_inputs(spec: str) -> Inputs:
    """The callable ``MODULE:ATTR`` names, giving each run's input.

    Raises:
        ValueError: ``spec`` is not ``MODULE:ATTR``, does not import, or is not callable.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--inputs {spec!r}: expected MODULE:ATTR, for example myapp.sim:inputs")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"--inputs {spec!r}: {exc}") from exc
    if not callable(found):
        raise ValueError(f"--inputs {spec!r}: expected a callable (rng, workflow) -> input")
    inputs: Inputs = found
    return inputs


@frozen
class SeedsRun:
    """What a run of many seeds found: how many passed, their steps, and the first failure."""

    passed: int
    steps: int
    seconds: float
    failure: SimulationFailure | None

    def summary(self, runs: int, workers: int) -> str:
        each = self.steps // self.passed if self.passed else 0
        rate = self.passed / self.seconds * 60 if self.seconds > 0 else 0.0
        said = (
            f"{self.passed} seeds passed ({runs} runs x {workers} workers, {each:,} steps a "
            f"seed) in {self.seconds:.1f}s: {rate:,.0f} seeds/min"
        )
        if self.failure is not None:
            said += f"; seed {self.failure.seed} failed"
        return said


def run_seeds(
    workflows: Sequence[Workflow[Any, Any]],
    seeds: Iterable[int],
    *,
    budget_seconds: float | None = None,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> SeedsRun:
    """Simulate ``workflows`` on each seed in turn, until one fails, the seeds run out,
    or ``budget_seconds`` (if given) have passed. ``options`` go to ``simulate``
    (``runs``, ``workers``, ``steps``, ``faults``, ``inputs``, ``invariants``...);
    ``progress`` is told each seed done."""
    started = time.monotonic()
    passed = steps = 0
    failure: SimulationFailure | None = None
    for seed in seeds:
        if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
            break
        try:
            steps += simulate(*workflows, seed=seed, **options).steps
        except SimulationFailure as failed:
            failure = failed
            break
        passed += 1
        if progress is not None:
            progress(seed)
    return SeedsRun(passed, steps, time.monotonic() - started, failure)
