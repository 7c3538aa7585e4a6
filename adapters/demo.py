"""The document-processing demo: extract → parallel(classify, summarize) → merge.

``classify`` and ``summarize`` ask a model through ``ctx.ai`` when the kernel
has an ``AIConfig``. ``wfk demo`` gives it :func:`demo_ai`: by default over
:class:`OfflineModel`, a scripted provider (like ``testing.FakeAIProvider``,
which adapters may not import) that answers like the local stand-ins below,
so the demo runs anywhere, offline, with the same result every time;
``wfk demo --provider openai`` (or ``anthropic``) asks a real model. A kernel
without an ``AIConfig`` (``wfk worker --app adapters.demo:document_pipeline``)
runs the stand-ins directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
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
    StageContext,
    StageResult,
    Usage,
    WorkflowBuilder,
    define_stage,
)
from kernel.ports import AIProvider
from kernel.records import Json


@attrs.frozen
class DocumentInput:
    title: str
    text: str


@attrs.frozen
class Extraction:
    title: str
    text: str
    word_count: int


@attrs.frozen
class Classification:
    categories: list[str]


@attrs.frozen
class Summary:
    summary: str


@attrs.frozen
class Report:
    title: str
    summary: str
    categories: list[str]
    word_count: int


@attrs.frozen
class ExtractConfig:
    max_words: int = 10_000


OFFLINE_MODEL = "offline:stand-in"
"""The model the demo's stages ask unless the run's config names another."""


@attrs.frozen
class ClassifyConfig:
    labels: list[str] = attrs.field(
        factory=lambda: ["finance", "legal", "science", "sports", "technology"]
    )
    model: str = OFFLINE_MODEL


@attrs.frozen
class SummarizeConfig:
    max_words: int = 12
    model: str = OFFLINE_MODEL


@attrs.frozen
class NoConfig:
    pass


KEYWORDS = {
    "finance": {"money", "bank", "market", "invoice", "price", "revenue"},
    "legal": {"contract", "law", "court", "clause", "agreement"},
    "science": {"experiment", "data", "theory", "cell", "energy"},
    "sports": {"match", "team", "goal", "season", "player"},
    "technology": {"software", "computer", "network", "database", "code"},
}


def extract(ctx: StageContext[DocumentInput, ExtractConfig]) -> Extraction:
    words = ctx.input.text.split()[: ctx.config.max_words]
    ctx.progress(1.0, f"extracted {len(words)} words")
    return Extraction(title=ctx.input.title, text=" ".join(words), word_count=len(words))


def keyword_labels(text: str, labels: list[str]) -> list[str]:
    """The labels whose keywords occur in ``text`` (the stand-in classifier)."""
    words = {word.strip(".,;:!?").lower() for word in text.split()}
    return [label for label in labels if KEYWORDS.get(label, set()) & words]


def first_words(text: str, max_words: int) -> str:
    """The first ``max_words`` words of ``text`` (the stand-in summariser)."""
    words = text.split()
    return " ".join(words[:max_words]) + ("…" if len(words) > max_words else "")


def classify_prompt(text: str, labels: list[str]) -> str:
    return (
        f"Which of these labels fit the text: {', '.join(labels)}? Answer with the "
        f"fitting labels in `categories` (none fit: an empty list).\n\nText:\n{text}"
    )


def summarize_prompt(text: str, max_words: int) -> str:
    return f"Summarise the text in at most {max_words} words.\n\nText:\n{text}"


async def classify(ctx: StageContext[Extraction, ClassifyConfig]) -> StageResult[Classification]:
    if not ctx.ai.is_configured:
        await asyncio.sleep(0)  # where the model call would await
        tokens = len(ctx.input.text.split())
        found = keyword_labels(ctx.input.text, ctx.config.labels)
        return StageResult(
            Classification(categories=found or ["general"]),
            metrics={"total_tokens": tokens, "total_cost": round(tokens * 0.00001, 6)},
        )
    # The call's tokens and cost go to the usage ledger and the run's totals.
    answer = await ctx.ai.agenerate_object(
        ctx.config.model,
        classify_prompt(ctx.input.text, ctx.config.labels),
        output=Classification,
        max_tokens=200,
    )
    found = [label for label in answer.value.categories if label in ctx.config.labels]
    return StageResult(Classification(categories=found or ["general"]))


def summarize(ctx: StageContext[Extraction, SummarizeConfig]) -> StageResult[Summary]:
    digest = hashlib.sha256(ctx.input.text.encode()).hexdigest()[:8]
    ctx.log("INFO", "summarised", {"digest": digest})
    if not ctx.ai.is_configured:
        summary = first_words(ctx.input.text, ctx.config.max_words)
        return StageResult(Summary(summary), metrics={"total_tokens": len(ctx.input.text.split())})
    prompt = summarize_prompt(ctx.input.text, ctx.config.max_words)
    answer = ctx.ai.generate_text(ctx.config.model, prompt, max_tokens=200)
    return StageResult(Summary(summary=answer.text.strip()))


def merge(ctx: StageContext[None, NoConfig]) -> Report:
    extraction = ctx.require(extract_stage)
    return Report(
        title=extraction.title,
        summary=ctx.require(summarize_stage).summary,
        categories=ctx.require(classify_stage).categories,
        word_count=extraction.word_count,
    )


extract_stage = define_stage(
    id="extract",
    name="Extract",
    input=DocumentInput,
    output=Extraction,
    config=ExtractConfig,
    execute=extract,
)
classify_stage = define_stage(
    id="classify",
    name="Classify",
    input=Extraction,
    output=Classification,
    config=ClassifyConfig,
    execute=classify,
    dependencies=["extract"],
)
summarize_stage = define_stage(
    id="summarize",
    name="Summarize",
    input=Extraction,
    output=Summary,
    config=SummarizeConfig,
    execute=summarize,
    dependencies=["extract"],
)
merge_stage = define_stage(
    id="merge",
    name="Merge",
    input=None,
    output=Report,
    config=NoConfig,
    execute=merge,
    dependencies=["classify", "summarize"],
)

document_pipeline = (
    WorkflowBuilder(
        "document-pipeline",
        "Document pipeline",
        "Extract a document, classify and summarise it in parallel, merge the results",
        input=DocumentInput,
        output=Report,
    )
    .pipe(extract_stage)
    .parallel([classify_stage, summarize_stage])
    .pipe(merge_stage)
    .build()
)

SAMPLE_DOCUMENTS = [
    DocumentInput(
        title="Quarterly report",
        text="Revenue grew as the market recovered and the bank cut its price of credit.",
    ),
    DocumentInput(
        title="Release notes",
        text="The new software ships a faster database driver and better network code.",
    ),
    DocumentInput(
        title="Match day",
        text="The team scored a late goal to win the match and top the season table.",
    ),
]


# -- the demo's models ------------------------------------------------------------------

DEMO_MODELS = {
    "offline": OFFLINE_MODEL,
    "openai": "openai:gpt-4o-mini",
    "anthropic": "anthropic:claude-3-5-haiku-latest",
}
"""The model ``wfk demo --provider NAME`` asks."""

DEMO_PRICES = PriceTable(
    {
        OFFLINE_MODEL: ModelPrice(Decimal("0.15"), Decimal("0.60")),
        "openai:gpt-4o-mini": ModelPrice(Decimal("0.15"), Decimal("0.60")),
        "anthropic:claude-3-5-haiku-latest": ModelPrice(Decimal("0.80"), Decimal("4.00")),
    }
)
"""US dollars per million tokens (the offline model is priced like gpt-4o-mini)."""


class OfflineModel:
    """The demo's offline "model": it answers the demo's prompts like the stand-ins
    (keywords, first words) and counts a token per word."""

    name = "offline"

    def generate(self, request: AIRequest) -> AIResponse:
        prompt = request.messages[-1].content
        text = prompt.rpartition("Text:\n")[2]
        if request.json_schema is not None:
            labels = re.findall(r"[a-z]+", prompt.partition("?")[0].partition(":")[2])
            reply = json.dumps({"categories": keyword_labels(text, labels)})
        else:
            limit = re.search(r"at most (\d+) words", prompt)
            reply = first_words(text, int(limit.group(1)) if limit else 12)
        usage = Usage(len(prompt.split()), len(reply.split()))
        return AIResponse(reply, usage, request.model, finish_reason="stop")

    def embed(self, request: EmbedRequest) -> EmbedResponse:
        raise ProviderError("the demo's offline model does not embed", retryable=False)


def demo_ai(provider: AIProvider | None = None) -> AIConfig:
    """The demo's ``AIConfig`` over ``provider`` (default: the :class:`OfflineModel`)."""
    return AIConfig([provider or OfflineModel()], DEMO_PRICES)


def demo_run_config(provider_name: str) -> dict[str, dict[str, Json]]:
    """A run config that points the two AI stages at the model of ``provider_name``."""
    model = DEMO_MODELS[provider_name]
    return {"classify": {"model": model}, "summarize": {"model": model}}
