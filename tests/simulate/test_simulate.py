"""``testing.simulate``: the real kernel and the hosts' step function under a seeded
scheduler with faults; invariants after every step; replay; determinism (SPEC §17)."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kernel import Retry, StageContext, define_stage
from kernel.status import Status
from testing import FaultPlan, SimulationFailure, SimulationResult, replay, simulate
from testing.simulate import Timing
from testing.simulate.seeds import run_seeds
from testing.simulate.store import SimStore
from tests.simulate.summary import report
from tests.simulate.workflows import FAULTS, demo_workflows, numbers
from tests.workflows import NoConfig, Num, pipeline

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = demo_workflows()
LINE = re.compile(
    r"^t=\d+\.\d{3}s (client (create|resend|cancel|rerun) r\d+ |w\d+(/s\d+)? |fn |fault |heal )"
)


CI_SEEDS = 2000
"""The seeds this project's CI runs at most, each ``make test`` (SPEC §17): two halves,
one test each, so that both of pytest's workers (``-n 2``) run seeds at once."""

HALVES = {"seeds 0-999": range(0, 1000), "seeds 1000-1999": range(1000, 2000)}


@pytest.mark.parametrize("half", sorted(HALVES))
def test_the_demo_workflows_keep_every_invariant_over_many_seeds(
    request: pytest.FixtureRequest, wfk_seeds: list[int], half: str
) -> None:
    """As many of this half's 1,000 seeds as the time budget allows (``WFK_SIM_BUDGET_S``,
    50 s by default, for each half); ``pytest --wfk-seeds N`` runs N seeds whatever the
    time, half of them in each test."""
    asked = request.config.getoption("wfk_seeds") or request.config.getoption("wfk_seed")
    if asked is not None:
        first = half == min(HALVES)
        seeds: range | list[int] = (
            wfk_seeds[: (len(wfk_seeds) + 1) // 2]
            if first
            else (wfk_seeds[(len(wfk_seeds) + 1) // 2 :])
        )
    else:
        seeds = HALVES[half]
    budget = None if asked is not None else float(os.environ.get("WFK_SIM_BUDGET_S", "50"))
    done = run_seeds(WORKFLOWS, seeds, budget_seconds=budget, inputs=numbers, faults=FAULTS)
    if done.failure is not None:
        raise done.failure
    report(
        request,
        f"{half}: {done.summary(20, 3)} (of {len(seeds)}; budget "
        + (f"{budget:g}s, WFK_SIM_BUDGET_S)" if budget is not None else "none: --wfk-seeds)"),
    )
    assert done.passed >= min(len(seeds), 50)


def test_a_trace_is_readable_lines_naming_the_actor_and_the_action() -> None:
    result = simulate(*WORKFLOWS, seed=7, inputs=numbers, runs=4, workers=2)
    assert all(LINE.match(line) for line in result.trace), result.trace
    assert result.trace[0].startswith("t=")
    creates = [line for line in result.trace if " client create " in line]
    assert [line.split()[3] for line in creates] == ["r1", "r2", "r3", "r4"]
    assert any(re.search(r" w\d/s\d finish r\d+/\w+: completed", line) for line in result.trace)
    # The liveness phase follows the faults: its line names every worker it brings back.
    assert any(line.split()[1:5] == ["heal", "w1", "w2:", "faults"] for line in result.trace)


def test_the_same_seed_gives_the_same_trace_byte_for_byte() -> None:
    first = simulate(*WORKFLOWS, seed=11, inputs=numbers)
    second = simulate(*WORKFLOWS, seed=11, inputs=numbers)
    other = simulate(*WORKFLOWS, seed=12, inputs=numbers)
    assert first.trace == second.trace
    assert first.trace != other.trace


TRACE_SCRIPT = """
import hashlib, sys
sys.path.insert(0, {root!r})
from testing import simulate
from tests.simulate.workflows import FAULTS, demo_workflows, numbers
trace = simulate(*demo_workflows(), seed=5, inputs=numbers).trace
print(hashlib.sha256("\\n".join(trace).encode()).hexdigest())
"""


def test_the_trace_does_not_depend_on_the_hash_seed() -> None:
    here = simulate(*WORKFLOWS, seed=5, inputs=numbers).trace
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        script = TRACE_SCRIPT.format(root=str(ROOT))
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        digests.add(done.stdout.strip())
    assert digests == {hashlib.sha256("\n".join(here).encode()).hexdigest()}


def test_replaying_a_trace_gives_the_same_trace(tmp_path: Path) -> None:
    result = simulate(*WORKFLOWS, seed=3, inputs=numbers)
    assert replay(*WORKFLOWS, trace=result.trace).trace == result.trace
    result.save(tmp_path / "seed-3.json")
    again = replay(*WORKFLOWS, trace=tmp_path / "seed-3.json")
    assert again == SimulationResult(3, result.steps, result.trace)


def test_faults_of_every_kind_are_injected_and_some_seeds_leave_kinds_out() -> None:
    kinds: list[set[str]] = []
    for seed in range(40):
        trace = simulate(*WORKFLOWS, seed=seed, inputs=numbers).trace
        words = [line.split()[1:3] for line in trace]
        kinds.append({kind for actor, kind in words if actor == "fault" or kind in OUTSIDE})
    seen = set().union(*kinds)
    assert seen == {
        *("crash", "pause", "clock", "sink", "slow", "store", "stale", "answer", "message"),
        *OUTSIDE,
    }
    assert any(0 < len(k) < 6 for k in kinds)  # swarm: a seed with some kinds, not all


OUTSIDE = ("resend", "cancel", "rerun")
"""The client's actions that are drawn as faults: a create sent twice, a cancel, a rerun."""


def test_a_plan_without_faults_injects_none() -> None:
    trace = simulate(*WORKFLOWS, seed=1, inputs=numbers, faults=FaultPlan.none()).trace
    assert not [line for line in trace if line.split()[1] == "fault"]


def test_a_fault_rate_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match=r"FaultPlan.crash: expected a rate in 0..1, got 2"):
        FaultPlan(crash=2)


def test_inputs_are_required_when_the_input_has_fields_without_defaults() -> None:
    with pytest.raises(TypeError) as raised:
        simulate(*WORKFLOWS, seed=0)
    message = str(raised.value)
    assert "workflow 'linear' needs inputs" in message
    assert "Num has fields without defaults (value)" in message
    assert "inputs=lambda rng, workflow" in message


def _no_run_completes(store: SimStore) -> None:
    completed = [run.id for run in store.list_runs() if run.status == Status.COMPLETED]
    assert not completed, f"runs {completed} completed"


def test_a_user_invariant_that_breaks_fails_with_the_seed_and_a_shrunk_schedule() -> None:
    with pytest.raises(SimulationFailure) as raised:
        simulate(*WORKFLOWS, seed=0, inputs=numbers, invariants=[_no_run_completes])
    failure = raised.value
    assert failure.seed == 0
    assert failure.invariant.startswith("user invariant _no_run_completes: runs [")
    assert 0 < len(failure.shrunk) < len(failure.trace)
    assert failure.trace[-1].split(": ")[1] == "completed" or "completed" in failure.trace[-1]
    message = str(failure)
    assert message.startswith("simulation seed 0 broke an invariant: user invariant")
    assert "shrunk schedule" in message and "each run's steps:" in message
    # The shrunk schedule replays to the same failure.
    with pytest.raises(SimulationFailure) as again:
        replay(*WORKFLOWS, trace=failure.shrunk, invariants=[_no_run_completes])
    assert again.value.invariant.split(" [")[0] == failure.invariant.split(" [")[0]


def test_a_saved_failure_replays_from_its_file(tmp_path: Path) -> None:
    with pytest.raises(SimulationFailure) as raised:
        simulate(*WORKFLOWS, seed=1, inputs=numbers, invariants=[_no_run_completes], runs=3)
    raised.value.save(tmp_path / "regression.json")
    with pytest.raises(SimulationFailure) as again:
        replay(*WORKFLOWS, trace=tmp_path / "regression.json", invariants=[_no_run_completes])
    assert again.value.seed == 1
    assert again.value.invariant.startswith("user invariant _no_run_completes")


def _slow_retry() -> Any:
    def execute(ctx: StageContext[Num, NoConfig]) -> Num:
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        return ctx.input

    stage = define_stage(
        id="patient",
        name="Patient",
        input=Num,
        output=Num,
        config=NoConfig,
        execute=execute,
        retry=Retry(max_attempts=2, backoff=timedelta(minutes=15), max_backoff=timedelta(hours=1)),
    )
    return pipeline("patient", stage)


def test_a_run_not_terminal_within_the_liveness_bound_is_a_failure() -> None:
    patient = _slow_retry()  # its retry waits 15 minutes; the bound is 10
    quiet = FaultPlan.none()
    with pytest.raises(SimulationFailure) as raised:
        simulate(patient, seed=0, inputs=numbers, runs=1, steps=50, faults=quiet, shrink_seconds=1)
    assert raised.value.invariant.startswith("liveness: after the faults stopped, run r1")
    # Given a bound past the retry's backoff, the same seed finishes.
    half_hour = Timing(liveness=timedelta(minutes=30))
    simulate(patient, seed=0, inputs=numbers, runs=1, workers=1, faults=quiet, timing=half_hour)


def test_a_failure_that_does_not_replay_says_a_stage_or_check_is_not_deterministic() -> None:
    checks = itertools.count(1)

    def thirtieth_check_fails(store: SimStore) -> None:
        assert next(checks) != 30, "the 30th check fails"  # state kept between calls

    with pytest.raises(SimulationFailure) as raised:
        simulate(*WORKFLOWS, seed=0, inputs=numbers, runs=2, invariants=[thirtieth_check_fails])
    failure = raised.value
    assert failure.note is not None and failure.shrunk == failure.trace
    assert "warning: the schedule did not break the invariant again when replayed" in str(failure)
