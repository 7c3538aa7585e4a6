"""The batch workflow the batch tests run: ``summarise`` sends one request per document
to a batch provider and collects the replies (SPEC §12)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    StageContext,
    Workflow,
    WorkflowBuilder,
    define_llm_batch_stage,
)
from kernel.ports import BatchProvider
from testing import FakeBatchProvider, TestKernel, create_test_kernel

PRICES = PriceTable({"fakebatch:small": ModelPrice(Decimal("2"), Decimal("8"))})
"""10 input and 5 output tokens (the fake's usage) cost 0.00006 at full price."""
ITEM_COST = Decimal("0.00003000")
"""What one fake item costs at the batch price (half)."""
POLL = timedelta(minutes=1)


@attrs.frozen
class Documents:
    texts: dict[str, str]


@attrs.frozen
class Summaries:
    summaries: dict[str, str]
    failed: dict[str, str]


@attrs.frozen
class NoConfig:
    pass


def build(ctx: StageContext[Documents, NoConfig]) -> Sequence[BatchItem]:
    return [
        BatchItem(key, AIRequest("fakebatch:small", [Message("user", f"Summarise: {text}")]))
        for key, text in sorted(ctx.input.texts.items())
    ]


def collect(ctx: StageContext[Documents, NoConfig], results: BatchResults) -> Summaries:
    return Summaries(
        summaries={key: response.text for key, response in results.succeeded.items()},
        failed={key: item.code for key, item in results.failed.items()},
    )


def batch_workflow(
    *,
    build: Callable[[StageContext[Documents, NoConfig]], Sequence[BatchItem]] = build,
    collect: Callable[[StageContext[Documents, NoConfig], BatchResults], Any] = collect,
    max_item_retries: int = 0,
    max_wait: timedelta = timedelta(hours=24),
    provider: str = "fakebatch",
    poll_interval: timedelta = POLL,
) -> Workflow[Documents, Summaries]:
    stage = define_llm_batch_stage(
        id="summarise",
        name="Summarise",
        input=Documents,
        output=Summaries,
        config=NoConfig,
        provider=provider,
        build=build,
        collect=collect,
        poll_interval=poll_interval,
        max_wait=max_wait,
        max_item_retries=max_item_retries,
    )
    return (
        WorkflowBuilder("summaries", "Summaries", input=Documents, output=Summaries)
        .pipe(stage)
        .build()
    )


def batch_kernel(
    provider: BatchProvider | None = None, workflow: Workflow[Any, Any] | None = None
) -> TestKernel:
    return create_test_kernel(
        workflow or batch_workflow(),
        ai=AIConfig(providers=[], prices=PRICES),
        batch_providers=[provider or FakeBatchProvider()],
    )


DOCS = Documents({"a": "first text", "b": "second text", "c": "third text"})
