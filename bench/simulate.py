"""Simulation speed: seeds per minute of ``testing.simulate`` (SPEC §17 asks ≥ 1,000).

Each seed runs 20 runs x 3 virtual workers of the document-processing demo
(``adapters.demo.document_pipeline``: extract → classify ‖ summarize → merge,
its local stand-ins, no model) and a three-stage pipeline, with the default
fault plan, invariants after every step, and the liveness phase.

    .venv/bin/python bench/simulate.py --seeds 300
    .venv/bin/python bench/simulate.py --features 100  # signals, schedules, AI and batches
    .venv/bin/python bench/simulate.py --bugs 100   # the planted-bug table of docs/simulation.md
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.demo import document_pipeline
from bench.store_ops import WORKFLOW
from kernel import Workflow
from testing import simulate
from tests.simulate.workflows import FAULTS  # the default plan but lost commit answers

WORDS = ("durable", "workflows", "survive", "crashes", "leases", "outbox", "retries", "reports")


def inputs(rng: random.Random, workflow: Workflow[Any, Any]) -> dict[str, Any]:
    if workflow.id == document_pipeline.id:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40)))
        return {"title": f"doc {rng.randint(1, 999)}", "text": text}
    return {"n": rng.randint(0, 99)}


def bug_table(seeds: int) -> None:
    """For each bug of ``tests/simulate/bugs.py``: the first failing seed, how many of
    ``seeds`` seeds fail, and the first failure's steps before and after shrinking
    (and the seconds the failing seed and its shrinking took)."""
    from testing import SimulationFailure
    from tests.simulate import bugs, features
    from tests.simulate.workflows import demo_workflows, numbers

    demo: dict[str, Any] = {"inputs": numbers, "faults": FAULTS}
    more: dict[str, Any] = {"inputs": features.numbers, "runs": 10, **features.FEATURES}
    print("| bug | first failing seed | seeds failing | steps | shrunk to | seconds |")
    print("|---|---|---|---|---|---|")
    for name in [*bugs.BUGS, *bugs.FEATURE_BUGS]:
        feature = name in bugs.FEATURE_BUGS
        workflows = features.feature_workflows() if feature else demo_workflows()
        options = more if feature else demo
        first: tuple[int, int, int, float] | None = None
        failing = 0
        with bugs.planted(name):
            for seed in range(seeds):
                started = time.perf_counter()
                try:
                    simulate(
                        *workflows, seed=seed, shrink_seconds=10 if not first else 0, **options
                    )
                except SimulationFailure as failure:
                    failing += 1
                    if first is None:
                        spent = time.perf_counter() - started
                        first = (seed, len(failure.trace), len(failure.shrunk), spent)
        if first is None:
            print(f"| {name} | none | 0 of {seeds} | | | |")
            continue
        seed, before, after, spent = first
        print(f"| {name} | {seed} | {failing} of {seeds} | {before} | {after} | {spent:.1f} |")


def feature_speed(seeds: int) -> None:
    """Seeds a minute of the signal, schedule, AI and batch workflows (10 runs a seed)."""
    from tests.simulate import features

    steps = 0
    started, cpu = time.perf_counter(), time.process_time()
    workflows = features.feature_workflows()
    for seed in range(seeds):
        result = simulate(
            *workflows, seed=seed, inputs=features.numbers, runs=10, **features.FEATURES
        )
        steps += result.steps
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{seeds} seeds (10 runs x 3 workers: signals, schedules, AI, batches) in "
        f"{elapsed:.1f}s: {seeds / elapsed * 60:,.0f} seeds/min, {steps / seeds:,.0f} "
        f"steps/seed; CPU time {cpu:.1f}s: {seeds / cpu * 60:,.0f} seeds per CPU-minute"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--bugs", type=int, default=0, help="print the planted-bug table instead")
    parser.add_argument(
        "--features", type=int, default=0, help="time this many seeds of the feature workflows"
    )
    args = parser.parse_args()
    if args.bugs:
        bug_table(args.bugs)
        return
    if args.features:
        feature_speed(args.features)
        return
    steps = 0
    started, cpu = time.perf_counter(), time.process_time()
    for seed in range(args.seeds):
        result = simulate(document_pipeline, WORKFLOW, seed=seed, inputs=inputs, faults=FAULTS)
        steps += result.steps
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{args.seeds} seeds (20 runs x 3 workers) in {elapsed:.1f}s: "
        f"{args.seeds / elapsed * 60:,.0f} seeds/min, {steps / args.seeds:,.0f} steps/seed, "
        f"{steps / elapsed:,.0f} steps/s; CPU time {cpu:.1f}s: "
        f"{args.seeds / cpu * 60:,.0f} seeds per CPU-minute (what a quiet machine shows)"
    )


if __name__ == "__main__":
    main()
