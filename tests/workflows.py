"""Small stages and workflows the kernel, command and end-to-end tests share.

Every stage factory takes a :class:`Calls` counter, so a test can say how
often user code ran (``calls["add"] == 1``) without reaching into globals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import attrs

from kernel import (
    CompletionCheck,
    Stage,
    StageContext,
    StageResult,
    Suspend,
    Workflow,
    WorkflowBuilder,
    define_async_batch_stage,
    define_stage,
)


@attrs.frozen
class Num:
    value: int


@attrs.frozen
class Doc:
    title: str
    pages: int


@attrs.frozen
class NoConfig:
    pass


@attrs.frozen
class AddConfig:
    amount: int = 1


class WorkerCrash(BaseException):
    """Stands for a worker dying mid-stage: the runner does not catch it, so the
    stage stays RUNNING and its job stays leased, as after a real crash."""


class Calls:
    """How often user code ran, by stage id (``check_completion`` as ``"<id>.check"``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.attempts: list[tuple[str, int]] = []

    def hit(self, stage_id: str, attempt: int = 0) -> int:
        self.counts[stage_id] += 1
        self.attempts.append((stage_id, attempt))
        return self.counts[stage_id]

    def __getitem__(self, stage_id: str) -> int:
        return self.counts[stage_id]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# -- stages ----------------------------------------------------------------------


def echo(calls: Calls, id: str = "echo") -> Stage[Num, Num, NoConfig]:
    """Returns its input unchanged."""

    def execute(ctx: StageContext[Num, NoConfig]) -> Num:
        calls.hit(id, ctx.attempt)
        return ctx.input

    return define_stage(
        id=id, name=id.title(), input=Num, output=Num, config=NoConfig, execute=execute
    )


def add(calls: Calls, id: str = "add") -> Stage[Num, Num, AddConfig]:
    """Adds ``config.amount`` (default 1) to its input."""

    def execute(ctx: StageContext[Num, AddConfig]) -> Num:
        calls.hit(id, ctx.attempt)
        return Num(ctx.input.value + ctx.config.amount)

    return define_stage(
        id=id, name=id.title(), input=Num, output=Num, config=AddConfig, execute=execute
    )


def failing(calls: Calls, id: str = "failing", message: str = "boom") -> Stage[Num, Num, NoConfig]:
    """Raises ``RuntimeError(message)`` on every attempt."""

    def execute(ctx: StageContext[Num, NoConfig]) -> Num:
        calls.hit(id, ctx.attempt)
        raise RuntimeError(message)

    return define_stage(
        id=id, name=id.title(), input=Num, output=Num, config=NoConfig, execute=execute
    )


def flaky(calls: Calls, id: str = "flaky", failures: int = 1) -> Stage[Num, Num, NoConfig]:
    """Raises on its first ``failures`` calls, then returns its input."""

    def execute(ctx: StageContext[Num, NoConfig]) -> Num:
        if calls.hit(id, ctx.attempt) <= failures:
            raise RuntimeError(f"flaky failure {calls[id]}")
        return ctx.input

    return define_stage(
        id=id, name=id.title(), input=Num, output=Num, config=NoConfig, execute=execute
    )


def crashing(calls: Calls, id: str = "crashing", crashes: int = 1) -> Stage[Num, Num, NoConfig]:
    """Kills its worker (``WorkerCrash``) on its first ``crashes`` calls, then echoes."""

    def execute(ctx: StageContext[Num, NoConfig]) -> Num:
        if calls.hit(id, ctx.attempt) <= crashes:
            raise WorkerCrash(id)
        return ctx.input

    return define_stage(
        id=id, name=id.title(), input=Num, output=Num, config=NoConfig, execute=execute
    )


def doubled(calls: Calls, id: str = "double") -> Stage[Num, Num, NoConfig]:
    """An ``async def`` stage that doubles its input."""

    async def execute(ctx: StageContext[Num, NoConfig]) -> Num:
        calls.hit(id, ctx.attempt)
        return Num(ctx.input.value * 2)

    return define_stage(
        id=id, name=id.title(), input=Num, output=Num, config=NoConfig, execute=execute
    )


def costly(
    calls: Calls, id: str = "costly", cost: float = 0.5, tokens: int = 10
) -> Stage[Num, Num, NoConfig]:
    """Echoes its input and reports ``total_cost`` and ``total_tokens`` metrics."""

    def execute(ctx: StageContext[Num, NoConfig]) -> StageResult[Num]:
        calls.hit(id, ctx.attempt)
        return StageResult(ctx.input, metrics={"total_cost": cost, "total_tokens": tokens})

    return define_stage(
        id=id, name=id.title(), input=Num, output=Num, config=NoConfig, execute=execute
    )


def progressing(
    calls: Calls, id: str = "progress", steps: Sequence[float] = (0.25, 0.5, 1.0)
) -> Stage[Num, Num, NoConfig]:
    """Reports ``ctx.progress`` once per step, then echoes its input."""

    def execute(ctx: StageContext[Num, NoConfig]) -> Num:
        calls.hit(id, ctx.attempt)
        for number, step in enumerate(steps, 1):
            ctx.progress(step, f"step {number}", {"step": number})
        return ctx.input

    return define_stage(
        id=id, name=id.title(), input=Num, output=Num, config=NoConfig, execute=execute
    )


def joining(
    calls: Calls, left: Stage[Any, Num, Any], right: Stage[Any, Num, Any]
) -> Stage[None, Num, NoConfig]:
    """Reads two earlier outputs through ``ctx.require`` (by stage object) and sums them."""

    def execute(ctx: StageContext[None, NoConfig]) -> Num:
        calls.hit("join", ctx.attempt)
        return Num(ctx.require(left).value + ctx.require(right).value)

    return define_stage(
        id="join",
        name="Join",
        input=None,
        output=Num,
        config=NoConfig,
        execute=execute,
        dependencies=[left.id, right.id],
    )


def custom(
    id: str, execute: Callable[[StageContext[Num, NoConfig]], Any]
) -> Stage[Num, Num, NoConfig]:
    """A Num → Num stage running a test's own function."""
    return define_stage(
        id=id, name=id.title(), input=Num, output=Num, config=NoConfig, execute=execute
    )


@attrs.define
class Batch:
    """Controls an async-batch stage from the test: when it is ready, or that it failed."""

    poll_interval: timedelta = timedelta(seconds=30)
    max_wait: timedelta | None = None
    ready_on_check: int | None = 1
    """The check that reports ready (1 = the first); ``None`` never gets ready."""
    error: str | None = None
    next_check_in: timedelta | None = None
    checks: int = 0


def batch(calls: Calls, control: Batch, id: str = "batch") -> Stage[Num, Num, NoConfig]:
    """Suspends with ``{"value": input}``; ready after ``control.ready_on_check`` checks
    with output ``value * 10`` and a token metric."""

    def execute(ctx: StageContext[Num, NoConfig]) -> Suspend:
        calls.hit(id, ctx.attempt)
        return Suspend(
            state={"value": ctx.input.value},
            poll_interval=control.poll_interval,
            max_wait=control.max_wait,
        )

    def check(state: Any, ctx: StageContext[Num, NoConfig]) -> CompletionCheck[Num]:
        calls.hit(f"{id}.check", ctx.attempt)
        control.checks += 1
        if control.error is not None:
            return CompletionCheck(ready=False, error=control.error)
        if control.ready_on_check is not None and control.checks >= control.ready_on_check:
            return CompletionCheck(
                ready=True, output=Num(state["value"] * 10), metrics={"total_tokens": 7}
            )
        return CompletionCheck(ready=False, next_check_in=control.next_check_in)

    return define_async_batch_stage(
        id=id,
        name=id.title(),
        input=Num,
        output=Num,
        config=NoConfig,
        execute=execute,
        check_completion=check,
    )


# -- workflows -------------------------------------------------------------------


def pipeline(
    workflow_id: str,
    *groups: Stage[Any, Any, Any] | Sequence[Stage[Any, Any, Any]],
    input: type[Any] = Num,
) -> Workflow[Any, Any]:
    """A workflow of the given groups: a stage is piped, a list runs in parallel."""
    builder: WorkflowBuilder[Any, Any, Any] = WorkflowBuilder(
        workflow_id,
        workflow_id.replace("-", " ").title(),
        "a test workflow",
        input=input,
        output=object,
    )
    for group in groups:
        builder = builder.pipe(group) if isinstance(group, Stage) else builder.parallel(group)
    return builder.build()


def linear(calls: Calls) -> Workflow[Any, Any]:
    """``linear``: add "first" → add "second" → add "third" (input + 3 with defaults)."""
    return pipeline("linear", add(calls, "first"), add(calls, "second"), add(calls, "third"))


def fan_out(calls: Calls) -> Workflow[Any, Any]:
    """``fan-out``: echo "start" → parallel(add "left", add "right") → "join" (sum)."""
    left, right = add(calls, "left"), add(calls, "right")
    return pipeline("fan-out", echo(calls, "start"), [left, right], joining(calls, left, right))
