"""Writing a provider adapter: the AIProvider port, and ProviderError for failures."""

from decimal import Decimal

import attrs

from kernel import (
    AIConfig,
    AIRequest,
    AIResponse,
    EmbedRequest,
    EmbedResponse,
    ModelPrice,
    PriceTable,
    ProviderError,
    RunCreate,
    StageContext,
    Status,
    Usage,
    WorkflowBuilder,
    define_stage,
)
from testing import create_test_kernel


# --8<-- [start:provider]
class ShoutingProvider:
    """A provider whose "model" answers in capitals: a stand-in for an HTTP API."""

    name = "shout"  # models are named "shout:MODEL"

    def __init__(self, rate_limited_calls: int = 0) -> None:
        self.rate_limited_calls = rate_limited_calls

    def generate(self, request: AIRequest) -> AIResponse:
        if self.rate_limited_calls > 0:
            self.rate_limited_calls -= 1
            # Rate limits, timeouts and 5xx are retryable; other 4xx are not.
            raise ProviderError("429 Too Many Requests", retryable=True)
        prompt = request.messages[-1].content
        words = len(prompt.split())
        return AIResponse(
            text=prompt.upper(),
            # cached_input_tokens are part of input_tokens; reasoning_tokens are not
            # part of output_tokens.
            usage=Usage(input_tokens=words, output_tokens=words),
            model=request.model,  # the bare model name: "loud", not "shout:loud"
            finish_reason="stop",
        )

    def embed(self, request: EmbedRequest) -> EmbedResponse:
        vectors = tuple((float(len(text)),) for text in request.texts)
        return EmbedResponse(vectors, Usage(len(request.texts), 0), request.model)


# --8<-- [end:provider]


@attrs.frozen
class Text:
    value: str


@attrs.frozen
class NoConfig:
    pass


def shout(ctx: StageContext[Text, NoConfig]) -> Text:
    return Text(ctx.ai.generate_text("shout:loud", ctx.input.value).text)


workflow = (
    WorkflowBuilder("shout", "Shout", input=Text, output=Text)
    .pipe(
        define_stage(
            id="shout", name="Shout", input=Text, output=Text, config=NoConfig, execute=shout
        )
    )
    .build()
)


# --8<-- [start:test]
def test_a_rate_limited_call_is_retried_by_the_stage_policy() -> None:
    provider = ShoutingProvider(rate_limited_calls=1)
    prices = PriceTable({"shout:loud": ModelPrice(Decimal("1"), Decimal("2"))})
    test = create_test_kernel(workflow, ai=AIConfig([provider], prices))
    created = test.dispatch(RunCreate(workflow_id="shout", input={"value": "hello there"}))
    test.run_until_idle()  # attempt 1 gets the 429; attempt 2, after the backoff, succeeds

    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"value": "HELLO THERE"}
    [stage] = test.store.get_stages(run.id)
    assert stage.attempt == 2
    # Only the call that was answered is paid: 2 x 1 + 2 x 2 tokens, per million.
    assert [entry.cost for entry in test.store.get_usage(run.id)] == [Decimal("0.000006")]


# --8<-- [end:test]
