"""Calling models from stage code: text and structured objects, priced and recorded."""

from decimal import Decimal

import attrs

from kernel import (
    AIConfig,
    AIRequest,
    ModelPrice,
    PriceTable,
    RunCreate,
    StageContext,
    Status,
    Usage,
    WorkflowBuilder,
    define_stage,
)
from testing import FakeAIProvider, create_test_kernel


# --8<-- [start:stage]
@attrs.frozen
class Ticket:
    subject: str
    body: str


@attrs.frozen
class Triage:
    team: str
    urgent: bool
    reason: str


@attrs.frozen
class Answer:
    triage: Triage
    reply: str


@attrs.frozen
class TriageConfig:
    model: str = "openai:gpt-4o-mini"


def triage(ctx: StageContext[Ticket, TriageConfig]) -> Answer:
    found = ctx.ai.generate_object(
        ctx.config.model,
        f"Which team should handle this ticket: billing, tech or sales?\n\n{ctx.input.body}",
        output=Triage,
    )
    draft = ctx.ai.generate_text(
        ctx.config.model,
        f"Draft a two-line reply to: {ctx.input.body}",
        system="You answer support tickets politely.",
        max_tokens=120,
    )
    ctx.log("INFO", "triaged", {"team": found.value.team, "cost": str(found.cost + draft.cost)})
    return Answer(triage=found.value, reply=draft.text)


triage_stage = define_stage(
    id="triage", name="Triage", input=Ticket, output=Answer, config=TriageConfig, execute=triage
)
support = (
    WorkflowBuilder("support", "Support", input=Ticket, output=Answer).pipe(triage_stage).build()
)
# --8<-- [end:stage]


# --8<-- [start:config]
PRICES = PriceTable(
    {  # per million tokens, in the currency your budgets use
        "openai:gpt-4o-mini": ModelPrice(input=Decimal("0.15"), output=Decimal("0.60")),
        "anthropic:claude-3-5-haiku-latest": ModelPrice(
            input=Decimal("0.80"), output=Decimal("4.00"), cached_input=Decimal("0.08")
        ),
    }
)


def production_config() -> AIConfig:
    from adapters.ai.anthropic import AnthropicProvider
    from adapters.ai.openai import OpenAIProvider

    # Each SDK client reads its key from the environment when the first call is made.
    return AIConfig([OpenAIProvider(), AnthropicProvider()], PRICES)


# kernel = create_kernel(support, store=store, ai=production_config())
# --8<-- [end:config]


# --8<-- [start:test]
def test_triage_asks_for_a_triage_and_a_reply() -> None:
    openai = FakeAIProvider(
        name="openai",
        replies=[
            '{"team": "billing", "urgent": true, "reason": "double charge"}',
            "Sorry about the double charge.\nWe have refunded it.",
        ],
    )
    test = create_test_kernel(support, ai=AIConfig([openai], PRICES))
    created = test.dispatch(
        RunCreate(
            workflow_id="support",
            input={"subject": "Charged twice", "body": "You charged my card twice."},
        )
    )
    test.run_until_idle()

    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output is not None and run.output["triage"]["team"] == "billing"
    # The provider got the bare model name; the object call carried the schema.
    first = openai.requests[0]
    assert isinstance(first, AIRequest) and first.model == "gpt-4o-mini"
    assert first.json_schema is not None and first.json_schema["required"] == [
        "team",
        "urgent",
        "reason",
    ]
    # Each call is in the ledger, and in the run's totals.
    ledger = test.store.get_usage(run.id)
    assert [(entry.kind, entry.usage) for entry in ledger] == [
        ("object", Usage(10, 5)),
        ("text", Usage(10, 5)),
    ]
    assert run.total_cost == Decimal("0.00000900") and run.total_tokens == 30


# --8<-- [end:test]
