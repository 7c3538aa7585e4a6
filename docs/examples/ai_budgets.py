"""Budgets: the call that crosses the budget is paid and kept; the next one fails the run."""

from decimal import Decimal

import attrs

from kernel import (
    AIConfig,
    ModelPrice,
    PriceTable,
    RunCreate,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from testing import FakeAIProvider, create_test_kernel


@attrs.frozen
class Chapters:
    titles: list[str]


@attrs.frozen
class Summaries:
    texts: list[str]


@attrs.frozen
class NoConfig:
    pass


# --8<-- [start:workflow]
def summarise(ctx: StageContext[Chapters, NoConfig]) -> Summaries:
    texts = []
    for title in ctx.input.titles:  # one paid call per chapter
        texts.append(ctx.ai.generate_text("openai:gpt-4o-mini", f"Summarise {title}").text)
    return Summaries(texts)


book = (
    WorkflowBuilder(
        "book",
        "Summarise a book",
        input=Chapters,
        output=Summaries,
        budget=Decimal("0.50"),  # the default for every run of this workflow
    )
    .pipe(
        define_stage(
            id="summarise",
            name="Summarise",
            input=Chapters,
            output=Summaries,
            config=NoConfig,
            execute=summarise,
        )
    )
    .build()
)
# --8<-- [end:workflow]

# A price that makes each fake call (10 input, 5 output tokens) cost exactly 0.01.
PRICES = PriceTable({"openai:gpt-4o-mini": ModelPrice(Decimal("1000"), Decimal("0"))})


# --8<-- [start:test]
def test_the_run_stops_at_its_budget() -> None:
    openai = FakeAIProvider(name="openai", replies=lambda request: "A fine chapter.")
    test = create_test_kernel(book, ai=AIConfig([openai], PRICES))
    created = test.dispatch(
        RunCreate(
            workflow_id="book",
            input={"titles": ["One", "Two", "Three", "Four"]},
            budget=Decimal("0.015"),  # overrides the workflow's 0.50
        )
    )
    test.run_until_idle()

    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.FAILED
    assert run.error is not None and run.error.startswith("BUDGET_EXCEEDED: ")
    # Call 1 (spent 0 < 0.015) and call 2 (spent 0.01, crossing) were sent and paid;
    # call 3 found 0.02 spent and was never sent. The stage was not retried.
    assert len(openai.requests) == 2
    assert [entry.cost for entry in test.store.get_usage(run.id)] == [Decimal("0.01")] * 2
    assert run.total_cost == Decimal("0.02")


# --8<-- [end:test]
