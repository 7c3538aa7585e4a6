"""How AI errors fail a stage, and why what was paid stays paid (SPEC §11, §12.1)."""

from __future__ import annotations

from decimal import Decimal

from kernel import AIRequest, ProviderError, Retry, StageContext, Status
from testing import FakeAIProvider
from tests.ai.support import CENT, NoConfig, Out, Topic, ai_kernel, one_stage, run_to_end


def ask_once(ctx: StageContext[Topic, NoConfig]) -> Out:
    return Out(ctx.ai.generate_text("fake:small", "Hi").text)


def failing_first(error: ProviderError) -> FakeAIProvider:
    """A provider whose first request fails with ``error``; later ones answer "Hello"."""

    def answer(request: AIRequest) -> str:
        if len(fake.requests) == 1:
            raise error
        return "Hello"

    fake = FakeAIProvider(replies=answer)
    return fake


def test_a_retryable_provider_error_is_retried_by_the_stage_policy() -> None:
    fake = failing_first(ProviderError("429 Too Many Requests", retryable=True))
    tk = ai_kernel(one_stage(ask_once), fake)
    run = run_to_end(tk)

    assert (run.status, run.output) == (Status.COMPLETED, {"value": "Hello"})
    assert len(fake.requests) == 2
    [stage] = tk.store.get_stages(run.id)
    assert stage.attempt == 2


def test_a_retryable_provider_error_fails_the_run_once_the_attempts_are_used_up() -> None:
    def answer(request: AIRequest) -> str:
        raise ProviderError("503 Service Unavailable", retryable=True)

    fake = FakeAIProvider(replies=answer)
    run = run_to_end(ai_kernel(one_stage(ask_once, retry=Retry(max_attempts=2)), fake))

    assert (run.status, run.error) == (Status.FAILED, "PROVIDER_ERROR: 503 Service Unavailable")
    assert len(fake.requests) == 2


def test_a_non_retryable_provider_error_fails_the_stage_at_once() -> None:
    fake = failing_first(ProviderError("400 Bad Request: max_tokens too large", retryable=False))
    tk = ai_kernel(one_stage(ask_once), fake)
    run = run_to_end(tk)

    assert run.status == Status.FAILED
    assert run.error == "PROVIDER_ERROR: 400 Bad Request: max_tokens too large"
    assert len(fake.requests) == 1
    assert tk.store.get_usage(run.id) == []  # a refused call was not paid


def test_the_stage_policy_can_refuse_to_retry_provider_errors_too() -> None:
    fake = failing_first(ProviderError("429 Too Many Requests", retryable=True))
    stage_policy = Retry(max_attempts=3, non_retryable=(ProviderError,))
    run = run_to_end(ai_kernel(one_stage(ask_once, retry=stage_policy), fake))

    assert (run.status, run.error) == (Status.FAILED, "PROVIDER_ERROR: 429 Too Many Requests")


def test_a_call_paid_by_an_attempt_that_then_raises_stays_in_the_ledger() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        reply = ctx.ai.generate_text("fake:small", f"attempt {ctx.attempt}")
        if ctx.attempt == 1:
            raise RuntimeError("the parser choked on the reply")
        return Out(reply.text)

    fake = FakeAIProvider(replies=["first", "second"])
    tk = ai_kernel(one_stage(ask), fake)
    run = run_to_end(tk)

    assert (run.status, run.output) == (Status.COMPLETED, {"value": "second"})
    ledger = tk.store.get_usage(run.id)
    assert [(entry.attempt, entry.cost) for entry in ledger] == [(1, CENT), (2, CENT)]
    assert (run.total_cost, run.total_tokens) == (2 * CENT, 30)
    [stage] = tk.store.get_stages(run.id)
    assert stage.metrics["calls"] == 2  # the stage's metrics keep every attempt's calls


def test_the_budget_counts_what_failed_attempts_paid() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        ctx.ai.generate_text("fake:small", f"attempt {ctx.attempt}")
        raise RuntimeError("flaky")

    fake = FakeAIProvider(replies=lambda request: "ok")
    tk = ai_kernel(one_stage(ask, retry=Retry(max_attempts=5)), fake)
    run = run_to_end(tk, budget=Decimal("0.02"))

    # Attempts 1 and 2 pay 0.01 each; attempt 3 finds 0.02 spent and sends nothing.
    assert len(fake.requests) == 2
    assert run.status == Status.FAILED
    assert run.error is not None and run.error.startswith("BUDGET_EXCEEDED:")
    assert [job.attempt for job in tk.store.get_jobs(run.id)] == [3]
