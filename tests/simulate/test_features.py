"""Signals, schedules, AI calls and LLM batches as simulated actions (SPEC §17 with
§11 to §14): the client sends signals and upserts schedules, providers fail on
``provider`` faults, and their invariants hold over many seeds; planted bugs of
each are found."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import attrs
import pytest

from kernel import Schedule
from testing import FaultPlan, SimulationFailure, replay, simulate
from testing.simulate.seeds import run_seeds
from tests.simulate import bugs
from tests.simulate.features import (
    FEATURES,
    SCHEDULES,
    ai,
    assistant,
    batch_providers,
    feature_workflows,
    numbers,
    review,
)
from tests.simulate.summary import report
from tests.simulate.workflows import FAULTS, demo_workflows

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = feature_workflows()
RUNS = 10
"""Runs per seed: these workflows wait for people, batches and schedules (longer seeds)."""

FEATURE_SEEDS = 1000
"""The seeds of these workflows CI runs at most (within a time budget)."""


def test_signals_schedules_and_providers_keep_every_invariant_over_many_seeds(
    request: pytest.FixtureRequest,
) -> None:
    """As many seeds as three tenths of ``WFK_SIM_BUDGET_S`` (15 s by default) allow."""
    budget = 0.3 * float(os.environ.get("WFK_SIM_BUDGET_S", "50"))
    seeds = range(FEATURE_SEEDS)
    done = run_seeds(WORKFLOWS, seeds, budget_seconds=budget, inputs=numbers, runs=RUNS, **FEATURES)
    if done.failure is not None:
        raise done.failure
    report(
        request,
        f"signals, schedules, AI and batches: {done.summary(RUNS, 3)} "
        f"(of {FEATURE_SEEDS}; budget {budget:g}s)",
    )
    assert done.passed >= 5  # however busy the machine


def _signal_outcome(line: str) -> str:
    said = line.split(": ", 1)[1]
    if said.startswith("refused: workflow run"):
        return "refused: the run is finished"
    if said.startswith("refused: stage"):
        return "refused: its stage stopped waiting"
    return said.split(":")[0]


def test_signals_come_early_on_time_late_twice_and_after_the_run_finished() -> None:
    """Each outcome shows up in the seeds tried. The rarest, a signal past its stage's
    timeout, comes about once in 16 seeds (5 in seeds 0 - 79, the first at 47)."""
    outcomes: Counter[str] = Counter()
    for seed in range(80):
        trace = simulate(*WORKFLOWS, seed=seed, inputs=numbers, runs=RUNS, **FEATURES).trace
        outcomes.update(_signal_outcome(line) for line in trace if " client signal " in line)
        outcomes.update("sent again" for line in trace if " client resignal " in line)
    assert {
        "kept",  # before its stage waits
        "delivered",  # while it waits
        "refused: its stage stopped waiting",  # past the stage's timeout
        "refused: the run is finished",
        "sent again",  # a duplicate: the same answer, nothing written
    } <= set(outcomes), outcomes


def test_a_schedule_fires_while_it_lasts_and_its_runs_are_named_by_fire_time() -> None:
    [every] = [s for s in SCHEDULES if s.id == "every-20s"]
    result = simulate(
        *WORKFLOWS, seed=2, inputs=numbers, runs=2, faults=FaultPlan.none(), **FEATURES
    )
    upserted = next(line for line in result.trace if " client schedule every-20s: " in line)
    first = float(re.findall(r"first fire at t=([\d.]+)s", upserted)[0])
    fired = sorted(
        {float(t) for line in result.trace for t in re.findall(r"every-20s@([\d.]+)s/", line)}
    )
    # Every 20 s from the first fire, until the client deletes it 90 s after the upsert.
    step = every.every.total_seconds() if every.every is not None else 0
    assert fired == [round(first + step * k, 3) for k in range(len(fired))]
    assert len(fired) >= 4
    assert any(" client unschedule every-20s: deleted" in line for line in result.trace)


def test_a_clock_jump_fires_each_missed_time_of_a_catch_up_all_schedule_once() -> None:
    jumps = attrs.evolve(FaultPlan.none(), clock_jump=0.01, swarm=0.0)
    most = 0
    for seed in range(10):
        trace = simulate(*WORKFLOWS, seed=seed, inputs=numbers, runs=2, faults=jumps, **FEATURES)
        fired = re.findall(r" tick schedules: fired (\d+)", "\n".join(trace.trace))
        most = max(most, *(int(n) for n in fired))
    # A jump of over 60 s leaves three or more times of "every-20s" due at one tick;
    # the invariants checked that each has one run and none is left behind.
    assert most >= 3


def test_provider_faults_are_drawn_only_when_stages_use_providers() -> None:
    seen: Counter[str] = Counter()
    for seed in range(40):
        trace = simulate(*WORKFLOWS, seed=seed, inputs=numbers, runs=RUNS, **FEATURES).trace
        seen.update(
            " ".join(line.split(":")[0].split()[3:5])
            for line in trace
            if " fault provider " in line
        )
        seen.update("died" for line in trace if ": died: fakebatch accepted batch" in line)
    assert {
        "rate limit",
        "answer lost",
        "submit uncertain",
        "crash after",
        "status fails",
        "cancel fails",
        "died",  # a worker killed right after the provider accepted its batch
    } <= set(seen), seen
    demo = simulate(*demo_workflows(), seed=3, inputs=numbers, faults=FAULTS).trace
    assert not [line for line in demo if " fault provider " in line]


def test_signal_payloads_are_required_when_their_type_has_fields_without_defaults() -> None:
    with pytest.raises(TypeError) as raised:
        simulate(review(), seed=0, inputs=numbers)
    message = str(raised.value)
    assert "workflow 'review' needs signals" in message
    assert "signal 'sign' (Signature)" in message
    assert "signals=lambda rng, workflow, signal" in message


def test_a_features_trace_replays_byte_for_byte(tmp_path: Path) -> None:
    result = simulate(*WORKFLOWS, seed=4, inputs=numbers, runs=RUNS, **FEATURES)
    assert replay(*WORKFLOWS, trace=result.trace, **FEATURES).trace == result.trace
    again = simulate(*WORKFLOWS, seed=4, inputs=numbers, runs=RUNS, **FEATURES)
    assert again.trace == result.trace


TRACE_SCRIPT = """
import hashlib, sys
sys.path.insert(0, {root!r})
from testing import simulate
from tests.simulate.features import FEATURES, feature_workflows, numbers
trace = simulate(*feature_workflows(), seed=6, inputs=numbers, runs=10, **FEATURES).trace
print(hashlib.sha256("\\n".join(trace).encode()).hexdigest())
"""


def test_a_features_trace_does_not_depend_on_the_hash_seed() -> None:
    here = simulate(*WORKFLOWS, seed=6, inputs=numbers, runs=RUNS, **FEATURES).trace
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", TRACE_SCRIPT.format(root=str(ROOT))],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(done.stdout.strip())
    assert digests == {hashlib.sha256("\n".join(here).encode()).hexdigest()}


def test_a_schedule_of_an_unknown_workflow_is_refused_by_name() -> None:
    nowhere = Schedule("lost", "no-such-workflow", every=SCHEDULES[0].every)
    with pytest.raises(ValueError, match="schedule 'lost' was refused"):
        simulate(*WORKFLOWS, seed=0, inputs=numbers, runs=1, **{**FEATURES, "schedules": [nowhere]})


FEATURE_BUGS = {
    "signal taken twice": "a signal is consumed once",
    "signal after timeout": "a signal past its stage's timeout is refused",
    "catch-up all fires latest": "a catch-up 'all' schedule has a run for every fire time",
    "batch resubmitted": "a batch is submitted once per intent",
    "usage counted twice": "usage recorded once per call id",
}
BUG_SEEDS = 50


@pytest.mark.parametrize("bug", sorted(FEATURE_BUGS))
def test_a_planted_bug_of_a_feature_breaks_its_invariant(bug: str) -> None:
    failure: SimulationFailure | None = None
    with bugs.planted(bug):
        for seed in range(BUG_SEEDS):
            try:
                simulate(
                    *WORKFLOWS, seed=seed, inputs=numbers, runs=RUNS, shrink_seconds=2, **FEATURES
                )
            except SimulationFailure as found:
                failure = found
                break
        assert failure is not None, f"{bug}: no failure in {BUG_SEEDS} seeds"
        assert failure.invariant.startswith(FEATURE_BUGS[bug]), failure.invariant
        # However far it got in its seconds, the shrunk schedule breaks the invariant again.
        with pytest.raises(SimulationFailure) as again:
            replay(*WORKFLOWS, trace=failure.shrunk, **FEATURES)
        assert again.value.invariant.startswith(FEATURE_BUGS[bug])


FEATURE_REGRESSIONS = Path(__file__).parent / "regressions" / "features"


def test_a_batch_is_not_submitted_twice_by_a_worker_whose_lease_was_reaped() -> None:
    """w1 leases ``r1/batch`` and freezes; w2 reaps the lease, leases the stage and
    submits its batch; w1 wakes and runs the stage it no longer holds. Found by seed 2579:
    ``batch.intent`` answered w1 as if the intent were new and it submitted again; now
    the answer says the intent is earlier and w1 asks the provider for the tag."""
    saved = FEATURE_REGRESSIONS / "batch-submitted-twice-by-a-stale-lease.json"
    replay(assistant(), trace=saved, ai=ai, batch_providers=batch_providers)
