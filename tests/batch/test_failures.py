"""How an LLM batch stage fails, and how failed items are retried (SPEC §12, §12.1)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest

from kernel import (
    AIRequest,
    BatchItem,
    BatchResults,
    DefinitionError,
    Message,
    RunCreate,
    StageContext,
    Status,
)
from kernel.llm_batch_state import batch_tag
from testing import FakeBatchProvider, create_test_kernel
from tests.batch.workflows import (
    DOCS,
    ITEM_COST,
    Documents,
    NoConfig,
    Summaries,
    batch_kernel,
    batch_workflow,
)


def run_to_end(fake: FakeBatchProvider, **options: object):  # type: ignore[no-untyped-def]
    tk = batch_kernel(fake, batch_workflow(**options))  # type: ignore[arg-type]
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    tk.run_until_idle()
    run = tk.store.get_run(run_id)
    assert run is not None
    (stage,) = tk.store.get_stages(run_id)
    return tk, run, stage


def test_failed_items_are_resubmitted_as_the_next_generation() -> None:
    fake = FakeBatchProvider(fail_items={"b"})
    tk, run, stage = run_to_end(fake, max_item_retries=1)
    assert run.status == Status.COMPLETED
    assert run.output["summaries"] == {"a": "reply to a", "b": "reply to b", "c": "reply to c"}
    assert fake.submitted == [
        batch_tag(run.id, "summarise", stage.id, 1),
        batch_tag(run.id, "summarise", stage.id, 2),
    ]
    # Usage: the three items of generation 1 that succeeded, then b in generation 2.
    second = fake.submitted[1]
    assert [e.call_id.rpartition(":")[2] for e in tk.store.get_usage(run.id)] == ["a", "c", "b"]
    assert tk.store.get_usage(run.id)[-1].call_id == f"{second}:b"
    assert run.total_cost == 3 * ITEM_COST


def test_items_still_failing_after_the_retries_reach_collect_as_failed() -> None:
    fake = FakeBatchProvider(fail_always={"c"})
    _, run, _ = run_to_end(fake, max_item_retries=2)
    assert run.status == Status.COMPLETED
    assert run.output["failed"] == {"c": "FAKE_ITEM_FAILED"}
    assert len(fake.submitted) == 3  # generations 1, 2 and 3


def test_without_retries_a_failed_item_goes_straight_to_collect() -> None:
    fake = FakeBatchProvider(fail_items={"a"})
    _, run, _ = run_to_end(fake)
    assert run.output["failed"] == {"a": "FAKE_ITEM_FAILED"}
    assert len(fake.submitted) == 1


def _items(*models_and_ids: tuple[str, str]):  # type: ignore[no-untyped-def]
    def build(ctx: StageContext[Documents, NoConfig]) -> Sequence[BatchItem]:
        return [
            BatchItem(key, AIRequest(model, [Message("user", "hi")]))
            for key, model in models_and_ids
        ]

    return build


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (_items(), "build returned no items"),
        (
            _items(("a", "fakebatch:small"), ("a", "fakebatch:small")),
            "custom_id 'a' is used more than once",
        ),
        (
            _items(("a", "openai:gpt-4o-mini")),
            "item 'a' asks for model 'openai:gpt-4o-mini'",
        ),
        (
            _items(("a", "small")),
            "item 'a' asks for model 'small'",
        ),
    ],
)
def test_an_invalid_batch_fails_the_stage_for_good(build, problem: str) -> None:  # type: ignore[no-untyped-def]
    fake = FakeBatchProvider()
    _, run, stage = run_to_end(fake, build=build)
    assert run.status == Status.FAILED
    assert stage.attempt == 1
    assert stage.error is not None and stage.error.startswith("INVALID_BATCH: ")
    assert problem in stage.error
    assert fake.submitted == []


def test_more_items_than_the_provider_takes_is_an_invalid_batch() -> None:
    fake = FakeBatchProvider(max_items=2)
    _, run, stage = run_to_end(fake)
    assert run.status == Status.FAILED
    assert stage.error == ("INVALID_BATCH: 3 items, more than the 2 one 'fakebatch' batch may hold")
    assert fake.submitted == []


def test_a_run_over_its_budget_submits_nothing() -> None:
    fake = FakeBatchProvider()
    tk = batch_kernel(fake)
    run_id = tk.dispatch(
        RunCreate(workflow_id="summaries", input=DOCS, budget=Decimal("0.00001"))
    ).workflow_run_id
    # Spend the budget first: a call recorded against the run.
    from kernel import Usage, UsageRecord

    tk.dispatch(
        UsageRecord(
            call_id="earlier", workflow_run_id=run_id, stage_id="summarise", attempt=1,
            model="fakebatch:small", kind="text", usage=Usage(10, 5),
            cost=Decimal("0.00001"), priced=True,
        )
    )  # fmt: skip
    tk.run_until_idle()
    (stage,) = tk.store.get_stages(run_id)
    assert stage.status == Status.FAILED
    assert stage.error is not None and stage.error.startswith("BUDGET_EXCEEDED: ")
    assert fake.submitted == []


def test_collect_raising_fails_the_stage_for_good() -> None:
    def broken(ctx: StageContext[Documents, NoConfig], results: BatchResults) -> Summaries:
        raise ValueError("cannot read the replies")

    fake = FakeBatchProvider()
    tk, run, stage = run_to_end(fake, collect=broken)
    assert run.status == Status.FAILED
    assert stage.error == "ValueError: cannot read the replies"
    assert stage.attempt == 1 and len(fake.submitted) == 1
    assert len(tk.store.get_usage(run.id)) == 3  # what was paid stays paid


def test_a_batch_still_running_at_its_max_wait_is_cancelled_after_commit() -> None:
    fake = FakeBatchProvider(finish_after_polls=1_000)
    tk, run, stage = run_to_end(fake, max_wait=timedelta(minutes=30))
    assert run.status == Status.FAILED
    assert stage.error is not None and stage.error.startswith("BATCH_TIMEOUT: ")
    assert stage.completed_at == stage.created_at + timedelta(minutes=30)
    (batch_id,) = fake.cancelled
    assert batch_id.startswith("fakebatch-batch-")
    assert tk.store.get_batch_cancels() == []


def test_a_batch_stage_naming_an_unknown_provider_is_refused() -> None:
    with pytest.raises(DefinitionError, match="batch provider 'elsewhere' is not among"):
        create_test_kernel(
            batch_workflow(provider="elsewhere"), batch_providers=[FakeBatchProvider()]
        )


def test_define_llm_batch_stage_names_the_wrong_argument() -> None:
    with pytest.raises(DefinitionError, match="poll_interval must be a positive timedelta"):
        from kernel import define_llm_batch_stage

        define_llm_batch_stage(
            id="s", name="S", input=None, output=Summaries, config=NoConfig,
            provider="fakebatch", build=lambda ctx: [], collect=lambda ctx, r: {},
            poll_interval=timedelta(0),
        )  # fmt: skip
