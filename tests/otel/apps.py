"""Workflows the OpenTelemetry tests run: plain, reporting tokens and cost, flaky,
failing, async, and timed stages that open spans of their own."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import attrs
from opentelemetry import trace

from kernel import (
    CompletionCheck,
    Retry,
    StageContext,
    StageResult,
    Suspend,
    WorkflowBuilder,
    define_async_batch_stage,
    define_stage,
)


@attrs.frozen
class Text:
    text: str


@attrs.frozen
class NoConfig:
    pass


def _upper(ctx: StageContext[Text, NoConfig]) -> Text:
    return Text(ctx.input.text.upper())


def _summarise(ctx: StageContext[Text, NoConfig]) -> StageResult[Text]:
    return StageResult(Text(ctx.input.text[:5]), metrics={"total_tokens": 42, "total_cost": 0.25})


def _flaky(ctx: StageContext[Text, NoConfig]) -> Text:
    if ctx.attempt == 1:
        raise ConnectionError("model endpoint unreachable")
    return ctx.input


def _broken(ctx: StageContext[Text, NoConfig]) -> Text:
    raise ValueError(f"cannot parse {ctx.input.text!r}")


class AppTracing:
    """Where the stages' own spans go (a test sets ``provider``; the global one otherwise)."""

    provider: trace.TracerProvider | None = None

    @classmethod
    def tracer(cls) -> trace.Tracer:
        return trace.get_tracer("app", tracer_provider=cls.provider)


async def _fetch(ctx: StageContext[Text, NoConfig]) -> Text:
    with AppTracing.tracer().start_as_current_span("fetch page"):
        await asyncio.sleep(0)
    return ctx.input


def _timed(ctx: StageContext[Text, NoConfig]) -> Text:
    with AppTracing.tracer().start_as_current_span("call model"):
        return ctx.input


def _submit(ctx: StageContext[Text, NoConfig]) -> Suspend:
    return Suspend(state={"text": ctx.input.text}, poll_interval=timedelta(seconds=10))


def _check(state: dict[str, str], ctx: StageContext[Text, NoConfig]) -> CompletionCheck[Text]:
    return CompletionCheck(ready=True, output=Text(state["text"]), metrics={"total_tokens": 7})


upper = define_stage(
    id="upper", name="Upper", input=Text, output=Text, config=NoConfig, execute=_upper
)
summarise = define_stage(
    id="summarise", name="Summarise", input=Text, output=Text, config=NoConfig, execute=_summarise
)
flaky = define_stage(
    id="flaky",
    name="Flaky",
    input=Text,
    output=Text,
    config=NoConfig,
    execute=_flaky,
    retry=Retry(max_attempts=2, backoff=timedelta(seconds=1)),
)
broken = define_stage(
    id="broken",
    name="Broken",
    input=Text,
    output=Text,
    config=NoConfig,
    execute=_broken,
    retry=Retry(max_attempts=1),
)
fetch = define_stage(
    id="fetch", name="Fetch", input=Text, output=Text, config=NoConfig, execute=_fetch
)
timed = define_stage(
    id="timed",
    name="Timed",
    input=Text,
    output=Text,
    config=NoConfig,
    execute=_timed,
    timeout=timedelta(seconds=5),
)

batch = define_async_batch_stage(
    id="batch",
    name="Batch",
    input=Text,
    output=Text,
    config=NoConfig,
    execute=_submit,
    check_completion=_check,
)

SUMMARY = (
    WorkflowBuilder("summary", "Summary", input=Text, output=Text)
    .pipe(upper)
    .pipe(summarise)
    .build()
)
FLAKY = WorkflowBuilder("flaky", "Flaky", input=Text, output=Text).pipe(flaky).build()
BROKEN = WorkflowBuilder("broken", "Broken", input=Text, output=Text).pipe(broken).build()
NESTED = (
    WorkflowBuilder("nested", "Nested", input=Text, output=Text).pipe(fetch).pipe(timed).build()
)
BATCH = WorkflowBuilder("batch", "Batch", input=Text, output=Text).pipe(batch).build()
ALL = (SUMMARY, FLAKY, BROKEN, NESTED, BATCH)
