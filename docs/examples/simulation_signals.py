"""Simulating a workflow that calls a model and waits for a person, started by a
schedule too: the client sends the signals and upserts the schedule, the model
fails now and then, and the invariants of signals, schedules and the usage
ledger are checked after every step."""

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs

from kernel import (
    AIConfig,
    ModelPrice,
    PriceTable,
    Retry,
    Schedule,
    StageContext,
    Status,
    Workflow,
    WorkflowBuilder,
    define_signal_stage,
    define_stage,
)
from testing import FakeAIProvider, simulate


# --8<-- [start:workflow]
@attrs.frozen
class Refund:
    order_id: str = "o-1"
    amount: int = 10


@attrs.frozen
class Drafted:
    order_id: str
    amount: int
    letter: str


@attrs.frozen
class Decision:
    approved: bool
    by: str


@attrs.frozen
class NoConfig:
    pass


def draft(ctx: StageContext[Refund, NoConfig]) -> Drafted:
    asked = f"Write a refund letter for order {ctx.input.order_id}"
    letter = ctx.ai.generate_text("fake:small", asked)  # retried on a rate limit
    return Drafted(ctx.input.order_id, ctx.input.amount, letter.text)


def pay(ctx: StageContext[Decision, NoConfig]) -> Refund:
    drafted = ctx.require(draft_stage)
    return Refund(drafted.order_id, drafted.amount if ctx.input.approved else 0)


draft_stage = define_stage(
    id="draft",
    name="Draft",
    input=Refund,
    output=Drafted,
    config=NoConfig,
    execute=draft,
    retry=Retry(max_attempts=5, backoff=timedelta(seconds=2)),
)
refunds = (
    WorkflowBuilder("refunds", "Refunds", input=Refund, output=Refund)
    .pipe(draft_stage)
    .pipe(
        define_signal_stage(
            id="approve",
            name="Approve",
            signal="approval",
            output=Decision,
            timeout=timedelta(minutes=1),
        )
    )
    .pipe(
        define_stage(
            id="pay",
            name="Pay",
            input=Decision,
            output=Refund,
            config=NoConfig,
            execute=pay,
            dependencies=["draft"],
        )
    )
    .build()
)


def decisions(rng: random.Random, workflow: Workflow[Any, Any], signal: str) -> dict[str, Any]:
    """Each signal's payload: ``Decision`` has fields without defaults."""
    return {"approved": rng.random() < 0.8, "by": rng.choice(["ana", "bo"])}


def fake_model() -> AIConfig:
    """Called for every simulated run and replay: each starts with a fresh fake."""
    prices = PriceTable({"fake:small": ModelPrice(Decimal("0.15"), Decimal("0.60"))})
    return AIConfig([FakeAIProvider(replies=lambda request: "Dear customer, ...")], prices)


every_30s = Schedule("every-30s", "refunds", every=timedelta(seconds=30), input={})
# --8<-- [end:workflow]


# --8<-- [start:test]
def paid_only_when_approved(store: Any) -> None:
    """A user invariant: a refund is paid only when the approval said so."""
    for run in store.list_runs(status=Status.COMPLETED):
        taken = [s for s in store.get_signals(run.id) if s.stage_id == "approve"]
        if not taken[-1].payload["approved"]:  # the last one (a rerun takes another)
            assert run.output["amount"] == 0, f"run {run.id} paid a refused refund"


def test_refunds_keep_every_invariant_under_faults() -> None:
    for seed in range(10):
        simulate(
            refunds,
            seed=seed,
            runs=6,
            signals=decisions,  # the client sends each run's "approval" at its own moment
            ai=fake_model,  # provider faults: rate limits, answers lost after payment
            schedules=[every_30s],  # upserted early, fired by the workers' ticks, deleted
            invariants=[paid_only_when_approved],
        )


# --8<-- [end:test]
