"""A real stage calling ``ctx.ai`` over ``OpenAIProvider``: the adapter's request,
its usage normalisation and the ledger meet end to end."""

from __future__ import annotations

import json
from decimal import Decimal

import attrs

from adapters.ai.openai import OpenAIProvider
from kernel import (
    AIConfig,
    ModelPrice,
    PriceTable,
    RunCreate,
    StageContext,
    Status,
    Usage,
    WorkflowBuilder,
    WorkflowRun,
    define_stage,
)
from testing import TestKernel, create_test_kernel
from tests.adapters_ai.openai_server import OpenAIServer, completion, openai_error, usage

PRICES = PriceTable(
    {
        "openai:gpt-4o-mini": ModelPrice(
            Decimal("0.15"), Decimal("0.60"), cached_input=Decimal("0.075")
        ),
    }
)


@attrs.frozen
class Invoice:
    text: str


@attrs.frozen
class Parsed:
    vendor: str
    total_cents: int


@attrs.frozen
class NoConfig:
    pass


def parse(ctx: StageContext[Invoice, NoConfig]) -> Parsed:
    result = ctx.ai.generate_object(
        "openai:gpt-4o-mini", f"Read this invoice: {ctx.input.text}", output=Parsed
    )
    return result.value


WORKFLOW = (
    WorkflowBuilder("invoices", "Invoices", input=Invoice, output=Parsed)
    .pipe(
        define_stage(
            id="parse", name="Parse", input=Invoice, output=Parsed, config=NoConfig, execute=parse
        )
    )
    .build()
)


def run(server: OpenAIServer) -> tuple[TestKernel, WorkflowRun]:
    provider = OpenAIProvider(server.client())
    tk = create_test_kernel(WORKFLOW, ai=AIConfig([provider], PRICES))
    run_id = tk.dispatch(RunCreate(workflow_id="invoices", input={"text": "ACME, $12.50"}))
    tk.run_until_idle()
    found = tk.store.get_run(run_id.workflow_run_id)
    assert found is not None
    return tk, found


def test_generate_object_over_openai_fills_the_output_and_the_ledger() -> None:
    server = OpenAIServer()
    answer = json.dumps({"vendor": "ACME", "total_cents": 1250})
    server.completions.append(
        completion(answer, usage=usage(1_000, 300, cached=400, reasoning=100))
    )

    tk, done = run(server)

    assert done.status == Status.COMPLETED
    assert done.output == {"vendor": "ACME", "total_cents": 1250}
    [body] = server.bodies("/v1/chat/completions")
    assert body["model"] == "gpt-4o-mini"
    assert body["response_format"]["json_schema"]["strict"] is True  # every field required
    [entry] = tk.store.get_usage(done.id)
    assert entry.usage == Usage(1_000, 200, cached_input_tokens=400, reasoning_tokens=100)
    # 600 x 0.15 + 400 x 0.075 + (200 + 100) x 0.60, per million tokens
    assert entry.cost == Decimal("0.00030000")
    assert done.total_cost == Decimal("0.00030000")


def test_a_request_the_api_refuses_fails_the_run_without_retrying() -> None:
    server = OpenAIServer()
    server.failures.append(openai_error(400, "Invalid schema for response_format"))

    tk, done = run(server)

    assert done.status == Status.FAILED
    assert len(server.bodies("/v1/chat/completions")) == 1
    assert tk.store.get_usage(done.id) == []


def test_a_rate_limit_is_retried_by_the_stage_and_the_retry_succeeds() -> None:
    server = OpenAIServer()
    server.failures.append(openai_error(429, "Rate limit reached for gpt-4o-mini"))
    server.completions.append(
        completion(json.dumps({"vendor": "ACME", "total_cents": 1250}), usage=usage(10, 5))
    )

    tk, done = run(server)

    assert done.status == Status.COMPLETED
    assert len(server.bodies("/v1/chat/completions")) == 2
    assert [entry.attempt for entry in tk.store.get_usage(done.id)] == [2]
