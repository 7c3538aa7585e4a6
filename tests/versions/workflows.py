"""Two versions of one workflow, ``pricing``, for the version tests.

Version ``"1"`` runs ``add`` then ``check``; version ``"2"`` puts a ``review``
stage between them. Every stage records its calls by ``"<version>:<stage id>"``
so a test can tell which version's code ran.
"""

from __future__ import annotations

import attrs

from kernel import Stage, StageContext, Workflow, WorkflowBuilder, define_stage
from tests.workflows import AddConfig, Calls, NoConfig, Num


@attrs.frozen
class ReviewConfig:
    factor: int = 10


def counted_add(calls: Calls, version: str) -> Stage[Num, Num, AddConfig]:
    def execute(ctx: StageContext[Num, AddConfig]) -> Num:
        calls.hit(f"{version}:add", ctx.attempt)
        return Num(ctx.input.value + ctx.config.amount)

    return define_stage(
        id="add", name="Add", input=Num, output=Num, config=AddConfig, execute=execute
    )


def counted_echo(calls: Calls, version: str, id: str) -> Stage[Num, Num, NoConfig]:
    def execute(ctx: StageContext[Num, NoConfig]) -> Num:
        calls.hit(f"{version}:{id}", ctx.attempt)
        return ctx.input

    return define_stage(
        id=id, name=id.title(), input=Num, output=Num, config=NoConfig, execute=execute
    )


def review(calls: Calls, version: str) -> Stage[Num, Num, ReviewConfig]:
    def execute(ctx: StageContext[Num, ReviewConfig]) -> Num:
        calls.hit(f"{version}:review", ctx.attempt)
        return Num(ctx.input.value * ctx.config.factor)

    return define_stage(
        id="review", name="Review", input=Num, output=Num, config=ReviewConfig, execute=execute
    )


def pricing_v1(calls: Calls) -> Workflow[Num, Num]:
    """``add`` → ``check``."""
    return (
        WorkflowBuilder("pricing", "Pricing", input=Num, output=Num, version="1")
        .pipe(counted_add(calls, "1"))
        .pipe(counted_echo(calls, "1", "check"))
        .build()
    )


def pricing_v2(calls: Calls) -> Workflow[Num, Num]:
    """``add`` → ``review`` (times 10) → ``check``."""
    return (
        WorkflowBuilder("pricing", "Pricing v2", input=Num, output=Num, version="2")
        .pipe(counted_add(calls, "2"))
        .pipe(review(calls, "2"))
        .pipe(counted_echo(calls, "2", "check"))
        .build()
    )


APP = [pricing_v1(Calls()), pricing_v2(Calls())]
"""Both versions, oldest first: what ``--app tests.versions.workflows:APP`` serves."""
