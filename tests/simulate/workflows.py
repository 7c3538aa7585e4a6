"""The workflows the simulation tests run: a pipeline, a fan-out and join, a retried
stage, and one that always fails. Their code depends only on their input and
attempt, so a seed's trace is the same in every process."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from kernel import Retry, StageContext, Workflow, define_stage
from testing.simulate.faults import FaultPlan
from tests.workflows import Calls, NoConfig, Num, add, joining, pipeline


def retried() -> Workflow[Any, Any]:
    """``retried``: a stage failing its first attempt on odd inputs, retried after 5 s."""

    def execute(ctx: StageContext[Num, NoConfig]) -> Num:
        if ctx.input.value % 2 and ctx.attempt == 1:
            raise RuntimeError(f"odd input {ctx.input.value}: first attempt fails")
        return Num(ctx.input.value + 1)

    stage = define_stage(
        id="wobbly",
        name="Wobbly",
        input=Num,
        output=Num,
        config=NoConfig,
        execute=execute,
        retry=Retry(max_attempts=3, backoff=timedelta(seconds=5)),
    )
    return pipeline("retried", stage, add(Calls(), "after"))


def doomed() -> Workflow[Any, Any]:
    """``doomed``: its one stage always fails (the run ends FAILED)."""

    def execute(ctx: StageContext[Num, NoConfig]) -> Num:
        raise ValueError("never works")

    stage = define_stage(
        id="doomed",
        name="Doomed",
        input=Num,
        output=Num,
        config=NoConfig,
        execute=execute,
        retry=Retry(max_attempts=1),
    )
    return pipeline("doomed", stage)


def demo_workflows() -> list[Workflow[Any, Any]]:
    calls = Calls()
    left, right = add(calls, "left"), add(calls, "right")
    return [
        pipeline("linear", add(calls, "first"), add(calls, "second"), add(calls, "third")),
        pipeline("fan-out", add(calls, "start"), [left, right], joining(calls, left, right)),
        retried(),
        doomed(),
    ]


FAULTS = FaultPlan()
"""Every kind of fault, lost commit answers included (they found a kernel bug, now
fixed: tests/simulate/regressions/answer-lost-create.json)."""


def numbers(rng: random.Random, workflow: Workflow[Any, Any]) -> Mapping[str, Any]:
    """Each run's input: a small number."""
    return {"value": rng.randint(0, 9)}


@attrs.frozen
class Nothing:
    pass


DEMO = demo_workflows()
"""The demo workflows as ``wfk sim --app tests.simulate.workflows:DEMO`` loads them."""
