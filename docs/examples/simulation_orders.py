"""Simulating a workflow: many seeded schedules with crashes, lost leases and sink
failures, invariants after every step, and a failing seed replayed from a file."""

import random
import tempfile
from pathlib import Path
from typing import Any

import attrs
import pytest

from kernel import Retry, RunCreate, StageContext, Status, Workflow, WorkflowBuilder, define_stage
from testing import (
    CollectingEventSink,
    FaultPlan,
    SimulationFailure,
    create_test_kernel,
    replay,
    simulate,
)


# --8<-- [start:workflow]
@attrs.frozen
class Order:
    order_id: str
    amount: int


@attrs.frozen
class Charged:
    order_id: str
    amount: int
    receipt: str


@attrs.frozen
class Shipped:
    order_id: str
    receipt: str


@attrs.frozen
class NoConfig:
    pass


def charge(ctx: StageContext[Order, NoConfig]) -> Charged:
    if ctx.input.amount > 900 and ctx.attempt == 1:
        raise RuntimeError("the bank timed out")  # retried
    return Charged(ctx.input.order_id, ctx.input.amount, receipt=f"rc-{ctx.input.order_id}")


def ship(ctx: StageContext[Charged, NoConfig]) -> Shipped:
    return Shipped(ctx.input.order_id, ctx.input.receipt)


orders = (
    WorkflowBuilder("orders", "Orders", input=Order, output=Shipped)
    .pipe(
        define_stage(
            id="charge",
            name="Charge",
            input=Order,
            output=Charged,
            config=NoConfig,
            execute=charge,
            retry=Retry(max_attempts=3),
        )
    )
    .pipe(
        define_stage(
            id="ship", name="Ship", input=Charged, output=Shipped, config=NoConfig, execute=ship
        )
    )
    .build()
)


def order_input(rng: random.Random, workflow: Workflow[Any, Any]) -> dict[str, Any]:
    """Each run's input: ``Order`` has fields without defaults, so ``simulate`` needs this."""
    return {"order_id": f"o-{rng.randint(1, 10_000)}", "amount": rng.randint(1, 1000)}


# --8<-- [end:workflow]


# --8<-- [start:test]
def shipped_only_after_charging(store: Any) -> None:
    """A user invariant: a completed order has a completed charge stage."""
    for run in store.list_runs(status=Status.COMPLETED):
        stages = {stage.stage_id: stage.status for stage in store.get_stages(run.id)}
        assert stages.get("charge") == Status.COMPLETED, f"run {run.id} shipped uncharged"


def test_orders_keep_every_invariant_under_faults() -> None:
    for seed in range(20):
        simulate(
            orders,
            seed=seed,
            runs=10,
            inputs=order_input,
            invariants=[shipped_only_after_charging],
        )


# --8<-- [end:test]


# --8<-- [start:failure]
def no_big_order_completes(store: Any) -> None:
    """A rule the workflow does not keep, to see what a failure looks like."""
    for run in store.list_runs(status=Status.COMPLETED):
        assert run.input["amount"] <= 500, f"order {run.input['order_id']} is over 500"


def test_a_failure_names_its_seed_and_replays_from_a_file() -> None:
    try:
        simulate(orders, seed=4, runs=5, inputs=order_input, invariants=[no_big_order_completes])
    except SimulationFailure as failure:
        assert failure.seed == 4
        assert failure.invariant.startswith("user invariant no_big_order_completes: order")
        assert len(failure.shrunk) < len(failure.trace)
        with tempfile.TemporaryDirectory() as folder:
            saved = Path(folder) / "seed-4.json"
            failure.save(saved)  # a regression file: keep it next to your tests
            try:
                replay(orders, trace=saved, invariants=[no_big_order_completes])
            except SimulationFailure as again:
                assert again.invariant.startswith("user invariant no_big_order_completes")
            else:
                raise AssertionError("the saved schedule should fail again")
    else:
        raise AssertionError("seed 4 should complete an order over 500")


# --8<-- [end:failure]


# --8<-- [start:faults]
def test_faults_are_a_plan_of_rates() -> None:
    # No faults: only the interleaving of three workers is explored.
    calm = simulate(orders, seed=1, runs=5, inputs=order_input, faults=FaultPlan.none())
    assert not [line for line in calm.trace if " fault " in line]
    # Many crashes, nothing else; every seed draws its own rate up to this ceiling.
    crashes = FaultPlan.none()
    crashes = attrs.evolve(crashes, crash=0.05, swarm=0.0)
    stormy = simulate(orders, seed=1, runs=5, inputs=order_input, faults=crashes)
    assert any(" fault crash w" in line for line in stormy.trace)


# --8<-- [end:faults]


# --8<-- [start:pytest]
@pytest.mark.wfk_seeds(50)  # pytest --wfk-seeds 2000 runs more; --wfk-seed 17 runs one
class TestOrdersOnEverySeed:
    def test_one_seed(self, wfk_seed: int) -> None:
        simulate(orders, seed=wfk_seed, runs=10, inputs=order_input)

    def test_an_order_ships(self, wfk_kernel: Any, collected_events: Any) -> None:
        tk = wfk_kernel(orders)  # a test kernel on the fixtures' FakeClock and event sink
        tk.dispatch(RunCreate(workflow_id="orders", input={"order_id": "o-1", "amount": 20}))
        tk.run_until_idle()
        assert collected_events.of_type("workflow:completed")


# --8<-- [end:pytest]


def test_the_pytest_class_runs_on_a_few_seeds() -> None:
    """What pytest does with the class above, for the docs' own check."""
    for seed in range(3):
        TestOrdersOnEverySeed().test_one_seed(seed)
    sink = CollectingEventSink()
    TestOrdersOnEverySeed().test_an_order_ships(
        lambda *workflows: create_test_kernel(*workflows, sink=sink), sink
    )
