"""What the ``ctx.ai`` tests share: prices, a one-stage workflow around any stage code,
and a driver that runs it to the end on a test kernel."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from kernel import (
    AIConfig,
    ModelPrice,
    PriceTable,
    Retry,
    RunCreate,
    StageContext,
    Workflow,
    WorkflowBuilder,
    WorkflowRun,
    define_stage,
)
from testing import FakeAIProvider, TestKernel, create_test_kernel

PRICES = PriceTable(
    {
        "fake:small": ModelPrice(Decimal("1000"), Decimal("0")),  # Usage(10, 5): 0.01
        "fake:embedder": ModelPrice(Decimal("100"), Decimal("0")),
    }
)
"""``fake:small`` costs exactly 0.01 per default fake reply: budgets are easy to reason about."""

CENT = Decimal("0.01000000")


@attrs.frozen
class Topic:
    text: str = "tides"


@attrs.frozen
class Out:
    """Whatever the stage found worth returning, as text."""

    value: str


@attrs.frozen
class NoConfig:
    pass


def one_stage(
    execute: Callable[[StageContext[Topic, NoConfig]], Any], *, retry: Retry | None = None
) -> Workflow[Topic, Out]:
    """A workflow ``ai`` with the single stage ``ask`` running ``execute``."""
    stage = define_stage(
        id="ask",
        name="Ask",
        input=Topic,
        output=Out,
        config=NoConfig,
        execute=execute,
        retry=retry,
    )
    return WorkflowBuilder("ai", "AI", input=Topic, output=Out).pipe(stage).build()


def ai_kernel(
    workflow: Workflow[Any, Any], *providers: FakeAIProvider, repair_attempts: int = 1
) -> TestKernel:
    """A test kernel whose ``ctx.ai`` calls ``providers`` at :data:`PRICES`."""
    config = AIConfig(list(providers), PRICES, repair_attempts=repair_attempts)
    return create_test_kernel(workflow, ai=config)


def run_to_end(tk: TestKernel, *, budget: Decimal | None = None) -> WorkflowRun:
    """Create a run of the kernel's only workflow, run until idle, and read it back."""
    created = RunCreate(workflow_id="ai", input={"text": "tides"}, budget=budget)
    run_id = tk.dispatch(created).workflow_run_id
    tk.run_until_idle()
    run = tk.store.get_run(run_id)
    assert run is not None
    return run
