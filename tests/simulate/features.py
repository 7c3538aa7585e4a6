"""The workflows that put signals, schedules, AI calls and LLM batches through the
simulation: ``review`` (two signatures that wait for the same signal, then an
approval with a timeout), ``assistant`` (two ``ctx.ai`` calls, then an LLM batch
with a failing item that is resubmitted), and two schedules of the demo
workflows. Their code depends only on their input and attempt."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs

from kernel import (
    AIConfig,
    AIRequest,
    BatchItem,
    BatchResults,
    Message,
    ModelPrice,
    PriceTable,
    Retry,
    Schedule,
    StageContext,
    Workflow,
    WorkflowBuilder,
    define_llm_batch_stage,
    define_signal_stage,
    define_stage,
)
from kernel.ports import BatchProvider
from testing import FakeAIProvider, FakeBatchProvider
from tests.simulate.workflows import demo_workflows
from tests.workflows import NoConfig, Num


@attrs.frozen
class Signature:
    by: str


@attrs.frozen
class Decision:
    approved: bool
    by: str


def _draft(ctx: StageContext[Num, NoConfig]) -> Num:
    return Num(ctx.input.value * 2)


def _close(ctx: StageContext[Decision, NoConfig]) -> Num:
    signed = [ctx.require(first).by, ctx.require(second).by]
    return Num(len(signed) if ctx.input.approved else 0)


first = define_signal_stage(id="first", name="First", signal="sign", output=Signature)
second = define_signal_stage(id="second", name="Second", signal="sign", output=Signature)


def review() -> Workflow[Any, Any]:
    """``review``: draft, two signatures (one signal name, in parallel), an approval
    that times out after 90 s, then close."""
    approve = define_signal_stage(
        id="approve",
        name="Approve",
        signal="approval",
        output=Decision,
        timeout=timedelta(seconds=90),
    )
    close = define_stage(
        id="close",
        name="Close",
        input=Decision,
        output=Num,
        config=NoConfig,
        execute=_close,
        dependencies=["first", "second"],
    )
    draft = define_stage(
        id="draft", name="Draft", input=Num, output=Num, config=NoConfig, execute=_draft
    )
    return (
        WorkflowBuilder("review", "Review", input=Num, output=Num)
        .pipe(draft)
        .parallel([first, second])
        .pipe(approve)
        .pipe(close)
        .build()
    )


@attrs.frozen
class Answers:
    answered: int
    failed: int


def _ask(ctx: StageContext[Num, NoConfig]) -> Num:
    question = ctx.ai.generate_text("fake:small", f"What is {ctx.input.value} + 1?")
    check = ctx.ai.generate_text("fake:small", f"Is {question.text!r} right?")
    return Num(ctx.input.value + len(check.text) % 3)


def _build(ctx: StageContext[Num, NoConfig]) -> Sequence[BatchItem]:
    return [
        BatchItem(f"item-{n}", AIRequest("fakebatch:small", [Message("user", f"{n}")]))
        for n in range(1, 4)
    ]


def _collect(ctx: StageContext[Num, NoConfig], results: BatchResults) -> Answers:
    return Answers(answered=len(results.succeeded), failed=len(results.failed))


def assistant() -> Workflow[Any, Any]:
    """``assistant``: two ``ctx.ai`` calls, then a batch of three items whose second
    fails once and is resubmitted (a second generation)."""
    ask = define_stage(id="ask", name="Ask", input=Num, output=Num, config=NoConfig, execute=_ask)
    batch = define_llm_batch_stage(
        id="batch",
        name="Batch",
        input=Num,
        output=Answers,
        config=NoConfig,
        provider="fakebatch",
        build=_build,
        collect=_collect,
        poll_interval=timedelta(seconds=20),
        max_wait=timedelta(minutes=5),
        max_item_retries=1,
    )
    return (
        WorkflowBuilder(
            "assistant",
            "Assistant",
            input=Num,
            output=Answers,
            retry=Retry(max_attempts=4, backoff=timedelta(seconds=5)),
        )
        .pipe(ask)
        .pipe(batch)
        .build()
    )


PRICES = PriceTable(
    {
        "fake:small": ModelPrice(Decimal("0.15"), Decimal("0.60")),
        "fakebatch:small": ModelPrice(Decimal("0.15"), Decimal("0.60")),
    }
)


def ai() -> AIConfig:
    """A fresh fake model for each simulation (``simulate(ai=ai)``)."""
    fake = FakeAIProvider(replies=lambda request: f"{len(request.messages[-1].content)}")
    return AIConfig(providers=[fake], prices=PRICES)


def batch_providers() -> list[BatchProvider]:
    """A fresh fake batch provider for each simulation: batches end on the second
    status check; ``item-2`` fails the first time."""
    return [FakeBatchProvider(finish_after_polls=2, fail_items=("item-2",))]


SCHEDULES = (
    Schedule(
        "every-20s",
        "linear",
        every=timedelta(seconds=20),
        input={"value": 1},
        catchup="all",
        overlap="allow",
    ),
    Schedule(
        "latest-30s", "retried", every=timedelta(seconds=30), input={"value": 3}, catchup="latest"
    ),
)
"""Fired by the workers' ticks while they last (``Timing.schedule_lifetime``)."""


def feature_workflows() -> list[Workflow[Any, Any]]:
    """The demo workflows the schedules start, ``review`` and ``assistant``."""
    linear, _, retried, _ = demo_workflows()
    return [linear, retried, review(), assistant()]


def numbers(rng: random.Random, workflow: Workflow[Any, Any]) -> Mapping[str, Any]:
    return {"value": rng.randint(0, 9)}


def payloads(rng: random.Random, workflow: Workflow[Any, Any], signal: str) -> Mapping[str, Any]:
    """Each signal's payload: a signature, or an approval that says yes three times in four."""
    if signal == "sign":
        return {"by": rng.choice(["ana", "bo", "cy"])}
    return {"approved": rng.random() < 0.75, "by": "ed"}


FEATURES: dict[str, Any] = {
    "signals": payloads,
    "schedules": SCHEDULES,
    "ai": ai,
    "batch_providers": batch_providers,
}
"""What ``simulate`` and ``replay`` take besides the workflows for these features."""
