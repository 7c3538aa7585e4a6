"""Budgets on runs (SPEC §11, §12.1): a workflow's default, a run's override, and
what ``usage.record`` says is left. (Refusing calls over budget is ``ctx.ai``'s.)"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from kernel import (
    DefinitionError,
    InvalidInputError,
    RunCreate,
    Usage,
    UsageRecord,
    WorkflowBuilder,
)
from testing import create_test_kernel
from tests.harness import TK, run_of
from tests.workflows import Calls, Num, echo


def workflow(budget: Decimal | None = None) -> Any:
    """Workflow ``ask`` of one echo stage ``ask``, with ``budget`` as its default."""
    builder: WorkflowBuilder[Any, Any, Any] = WorkflowBuilder(
        "ask", "Ask", input=Num, output=Num, budget=budget
    )
    return builder.pipe(echo(Calls(), "ask")).build()


def create(tk: TK, **fields: Any) -> str:
    return tk.dispatch(RunCreate(workflow_id="ask", input={"value": 1}, **fields)).workflow_run_id


def spend(tk: TK, run_id: str, call_id: str, cost: str) -> Any:
    return tk.dispatch(
        UsageRecord(
            call_id=call_id,
            workflow_run_id=run_id,
            stage_id="ask",
            attempt=1,
            model="fake:small",
            kind="text",
            usage=Usage(10, 5),
            cost=Decimal(cost),
            priced=True,
        )
    )


def test_a_run_takes_its_workflows_default_budget() -> None:
    """SPEC §12.1: ``WorkflowBuilder(..., budget=...)`` is the default of its runs."""
    wf = workflow(Decimal("2.50"))
    tk = create_test_kernel(wf)

    run_id = create(tk)

    assert wf.budget == Decimal("2.50")
    assert run_of(tk.store, run_id).budget == Decimal("2.50")


def test_a_runs_own_budget_overrides_the_default() -> None:
    """SPEC §12.1: ``RunCreate(budget=...)`` wins over the workflow's default."""
    tk = create_test_kernel(workflow(Decimal("2.50")))

    run_id = create(tk, budget=Decimal("0.10"))

    assert run_of(tk.store, run_id).budget == Decimal("0.10")


def test_without_either_a_run_has_no_budget() -> None:
    """SPEC §11: ``budget=None`` everywhere: no limit, and nothing is said to be left."""
    tk = create_test_kernel(workflow())
    run_id = create(tk)

    result = spend(tk, run_id, "c1", "0.2")

    assert run_of(tk.store, run_id).budget is None
    assert result.budget_left is None


def test_usage_record_says_what_is_left_and_goes_negative_past_the_budget() -> None:
    """SPEC §11: a call that crosses the budget is recorded in full (it was paid), and
    ``budget_left`` is the budget minus the spend, negative once over."""
    tk = create_test_kernel(workflow(Decimal("1")))
    run_id = create(tk)

    first = spend(tk, run_id, "c1", "0.75")
    second = spend(tk, run_id, "c2", "0.50")

    assert (first.run_total_cost, first.budget_left) == (Decimal("0.75"), Decimal("0.25"))
    assert (second.run_total_cost, second.budget_left) == (Decimal("1.25"), Decimal("-0.25"))
    assert run_of(tk.store, run_id).total_cost == Decimal("1.25")


BAD_BUDGETS = [
    pytest.param(Decimal(0), "Decimal('0')", id="zero"),
    pytest.param(Decimal("-1"), "Decimal('-1')", id="negative"),
    pytest.param(Decimal("NaN"), "Decimal('NaN')", id="nan"),
    pytest.param(Decimal("Infinity"), "Decimal('Infinity')", id="infinite"),
    pytest.param(1.5, "1.5", id="a float"),
    pytest.param("5", "'5'", id="a string"),
]


@pytest.mark.parametrize(("budget", "shown"), BAD_BUDGETS)
def test_a_bad_run_budget_is_invalid_input_naming_budget(budget: Any, shown: str) -> None:
    """SPEC §12.1: ``InvalidInputError`` naming ``budget`` and the value, when the
    command is built (it is a ``ValueError``, like every bad field); no run is made."""
    tk = create_test_kernel(workflow())
    message = f"invalid input: budget: expected a Decimal > 0, got {shown}"

    with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}$") as raised:
        create(tk, budget=budget)

    assert raised.value.problems == (f"budget: expected a Decimal > 0, got {shown}",)
    assert isinstance(raised.value, ValueError)
    assert tk.store.list_runs() == []


@pytest.mark.parametrize(("budget", "shown"), BAD_BUDGETS)
def test_a_bad_workflow_budget_is_a_definition_error_naming_budget(budget: Any, shown: str) -> None:
    """SPEC §12.1: ``DefinitionError`` naming the workflow, ``budget`` and the value."""
    message = f"workflow 'ask': budget: expected a Decimal > 0, got {shown}"

    with pytest.raises(DefinitionError, match=f"^{re.escape(message)}$"):
        workflow(budget)
