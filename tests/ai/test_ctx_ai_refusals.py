"""Calls ``ctx.ai`` refuses before anything is sent (SPEC §11, §12.1): no configuration,
bad arguments, unpriced models, spent budgets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kernel import (
    AIConfig,
    AINotConfiguredError,
    BudgetExceededError,
    InvalidAICallError,
    Message,
    PriceTable,
    StageContext,
    Status,
)
from testing import FakeAIProvider, create_test_kernel
from tests.ai.support import CENT, NoConfig, Out, Topic, ai_kernel, one_stage, run_to_end


def test_without_an_ai_config_reading_ctx_ai_works_and_calling_it_fails_for_good() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        ai = ctx.ai  # reading it is fine
        assert not ai.is_configured
        return Out(ai.generate_text("fake:small", "Hi").text)

    tk = create_test_kernel(one_stage(ask))
    run = run_to_end(tk)

    assert run.status == Status.FAILED
    assert run.error == f"AI_NOT_CONFIGURED: {AINotConfiguredError()}"
    assert [job.attempt for job in tk.store.get_jobs(run.id)] == [1]  # not retried


def capture(call: Any) -> list[BaseException]:
    """Stage code that makes ``call(ctx.ai)`` and keeps what it raised; the run ends."""
    raised: list[BaseException] = []

    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        try:
            call(ctx.ai)
        except Exception as exc:
            raised.append(exc)
        return Out("done")

    fake = FakeAIProvider(replies=["unused"])
    run_to_end(ai_kernel(one_stage(ask), fake))
    assert fake.requests == []  # nothing was sent
    return raised


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("small", "model: expected 'provider:model' (like 'openai:gpt-4o-mini'), got 'small'"),
        (":small", "model: expected 'provider:model' (like 'openai:gpt-4o-mini'), got ':small'"),
        ("fake:", "model: expected 'provider:model' (like 'openai:gpt-4o-mini'), got 'fake:'"),
        (
            "openai:gpt-4o",
            "model: no provider named 'openai' for 'openai:gpt-4o'; known providers: 'fake'",
        ),
    ],
)
def test_a_model_name_without_a_known_provider_is_refused(model: str, error: str) -> None:
    [raised] = capture(lambda ai: ai.generate_text(model, "Hi"))
    assert (type(raised), str(raised)) == (InvalidAICallError, error)
    assert isinstance(raised, ValueError)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda ai: ai.generate_text("fake:small"), "pass exactly one of prompt= or messages="),
        (
            lambda ai: ai.generate_text("fake:small", "Hi", messages=[Message("user", "Hi")]),
            "pass exactly one of prompt= or messages=",
        ),
        (
            lambda ai: ai.generate_text("fake:small", messages=[{"role": "user"}]),
            "messages[0]: expected a Message(role, content), got {'role': 'user'}",
        ),
        (
            lambda ai: ai.generate_object("fake:small", "Hi", output=dict),
            "output: expected an attrs class, got <class 'dict'>",
        ),
        (
            lambda ai: ai.embed("fake:embedder", "one text"),
            "texts: expected a non-empty list of str, got 'one text'",
        ),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(call: Any, error: str) -> None:
    [raised] = capture(call)
    assert (type(raised), str(raised)) == (InvalidAICallError, error)
    assert isinstance(raised, TypeError)


def test_a_bad_call_fails_the_run_at_once_without_sending_or_retrying() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        return Out(ctx.ai.generate_text("small", "Hi").text)

    fake = FakeAIProvider(replies=["unused"])
    tk = ai_kernel(one_stage(ask), fake)
    run = run_to_end(tk)

    assert fake.requests == []
    assert run.status == Status.FAILED
    assert run.error is not None and run.error.startswith(
        "INVALID_AI_CALL: model: expected 'provider:model'"
    )
    assert [job.attempt for job in tk.store.get_jobs(run.id)] == [1]


def test_a_model_without_a_price_is_refused_before_anything_is_sent() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        return Out(ctx.ai.generate_text("fake:large", "Hi").text)

    fake = FakeAIProvider(replies=["unused"])
    tk = ai_kernel(one_stage(ask), fake)
    run = run_to_end(tk)

    assert fake.requests == []
    assert run.status == Status.FAILED
    assert run.error is not None and run.error.startswith(
        "UNPRICED_MODEL: model 'fake:large' has no price in the PriceTable"
    )
    assert [job.attempt for job in tk.store.get_jobs(run.id)] == [1]


def test_allow_unpriced_sends_the_call_and_records_it_as_unpriced() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        return Out(ctx.ai.generate_text("fake:large", "Hi").text)

    fake = FakeAIProvider(replies=["Hello"])
    prices = PriceTable({}, allow_unpriced=True)
    tk = create_test_kernel(one_stage(ask), ai=AIConfig([fake], prices))
    run = run_to_end(tk)

    assert run.status == Status.COMPLETED
    [entry] = tk.store.get_usage(run.id)
    assert (entry.model, entry.cost, entry.priced) == ("fake:large", Decimal(0), False)
    assert (run.total_cost, run.total_tokens) == (Decimal(0), 15)


def test_the_call_that_crosses_the_budget_is_recorded_and_the_next_one_fails_the_run() -> None:
    calls: list[str] = []

    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        for n in range(5):
            calls.append(ctx.ai.generate_text("fake:small", f"call {n}").text)
        return Out("never")

    fake = FakeAIProvider(replies=lambda request: "ok")
    tk = ai_kernel(one_stage(ask), fake)
    run = run_to_end(tk, budget=Decimal("0.015"))

    assert calls == ["ok", "ok"]  # 0 < 0.015, then 0.01 < 0.015 (crossing), then refused
    assert len(fake.requests) == 2
    assert [entry.cost for entry in tk.store.get_usage(run.id)] == [CENT, CENT]
    assert run.status == Status.FAILED
    assert run.error is not None and run.error == (
        f"BUDGET_EXCEEDED: {BudgetExceededError(run.id, 2 * CENT, Decimal('0.015'))}"
    )
    assert [job.attempt for job in tk.store.get_jobs(run.id)] == [1]  # never retried


def test_a_run_without_a_budget_is_never_refused() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        for _ in range(20):
            ctx.ai.generate_text("fake:small", "again")
        return Out("done")

    tk = ai_kernel(one_stage(ask), FakeAIProvider(replies=lambda request: "ok"))
    run = run_to_end(tk)

    assert (run.status, run.total_cost) == (Status.COMPLETED, 20 * CENT)
