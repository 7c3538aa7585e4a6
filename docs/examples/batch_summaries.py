"""An LLM batch stage: summarise many documents through a provider's batch API, at half
the price, with every item's usage in the ledger."""

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import attrs
import pytest

from kernel import (
    AIConfig,
    AIRequest,
    BatchItem,
    BatchResults,
    LeaseReapStale,
    Message,
    ModelPrice,
    PriceTable,
    RunCancel,
    RunClaimPending,
    RunCreate,
    StageContext,
    Status,
    WorkflowBuilder,
    define_llm_batch_stage,
)
from testing import FakeBatchProvider, SimulatedCrash, create_test_kernel


# --8<-- [start:stage]
@attrs.frozen
class Documents:
    texts: dict[str, str]


@attrs.frozen
class Summaries:
    summaries: dict[str, str]
    failed: dict[str, str]


@attrs.frozen
class SummaryConfig:
    model: str = "openai:gpt-4o-mini"


def build(ctx: StageContext[Documents, SummaryConfig]) -> Sequence[BatchItem]:
    """One request per document; the custom id names its result."""
    return [
        BatchItem(key, AIRequest(ctx.config.model, [Message("user", f"Summarise: {text}")]))
        for key, text in sorted(ctx.input.texts.items())
    ]


def collect(ctx: StageContext[Documents, SummaryConfig], results: BatchResults) -> Summaries:
    """Every custom id is in ``results.items``: answered, or failed for good."""
    return Summaries(
        summaries={key: reply.text for key, reply in results.succeeded.items()},
        failed={key: item.code for key, item in results.failed.items()},
    )


summarise = define_llm_batch_stage(
    id="summarise",
    name="Summarise",
    input=Documents,
    output=Summaries,
    config=SummaryConfig,
    provider="openai",
    build=build,
    collect=collect,
    poll_interval=timedelta(minutes=1),
    max_wait=timedelta(hours=24),
    max_item_retries=1,
)

summaries = (
    WorkflowBuilder("summaries", "Summaries", input=Documents, output=Summaries)
    .pipe(summarise)
    .build()
)
# --8<-- [end:stage]

DOCS = Documents({"a": "first text", "b": "second text", "c": "third text"})


# --8<-- [start:test]
PRICES = PriceTable({"openai:gpt-4o-mini": ModelPrice(Decimal("0.15"), Decimal("0.60"))})


def test_each_document_is_summarised_once_at_the_batch_price() -> None:
    # The fake answers under the name the stage asks for; item "b" fails once.
    fake = FakeBatchProvider(name="openai", fail_items={"b"})
    test = create_test_kernel(
        summaries, ai=AIConfig(providers=[], prices=PRICES), batch_providers=[fake]
    )
    run_id = test.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    test.run_until_idle()  # jumps the fake clock from poll to poll

    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {
        "summaries": {"a": "reply to a", "b": "reply to b", "c": "reply to c"},
        "failed": {},
    }
    assert len(fake.submitted) == 2  # generation 1, then "b" again as generation 2
    usage = test.store.get_usage(run_id)
    assert len(usage) == 3  # one ledger row per answered item, never two
    # 10 input and 5 output tokens at half of 0.15 and 0.60 per million tokens:
    assert {entry.cost for entry in usage} == {Decimal("0.00000225")}
    # --8<-- [end:test]


# --8<-- [start:crash]
def test_a_worker_dying_after_the_submission_does_not_pay_twice() -> None:
    fake = FakeBatchProvider(name="openai", crash_after_submit=1)
    test = create_test_kernel(
        summaries, ai=AIConfig(providers=[], prices=PRICES), batch_providers=[fake]
    )
    run_id = test.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    with pytest.raises(SimulatedCrash):  # the provider took the batch, then the worker died
        test.run_until_idle()
    test.clock.advance(timedelta(minutes=2))
    test.dispatch(LeaseReapStale(stale_threshold_ms=60_000))  # what a host's tick does
    test.run_until_idle()

    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert len(fake.submitted) == 1  # the next attempt found the batch by its tag
    # --8<-- [end:crash]


# --8<-- [start:cancel]
def test_cancelling_the_run_cancels_the_batch_after_commit() -> None:
    fake = FakeBatchProvider(name="openai", finish_after_polls=100)
    test = create_test_kernel(
        summaries, ai=AIConfig(providers=[], prices=PRICES), batch_providers=[fake]
    )
    run_id = test.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    test.dispatch(RunClaimPending(worker_id="w"))
    test.kernel.execute_jobs("w")  # submitted; the stage is suspended

    test.dispatch(RunCancel(workflow_run_id=run_id))
    assert fake.cancelled == []  # nothing leaves the process inside a transaction
    test.run_until_idle()  # like a host's tick: batch.cancelPending
    assert len(fake.cancelled) == 1
    assert test.store.get_batch_cancels() == []
    # --8<-- [end:cancel]
