"""The document-processing demo: extract → parallel(classify, summarize) → merge.

The AI calls of the reference example are replaced by deterministic local
stand-ins, so the demo runs anywhere, offline, with the same result every time.
"""

from __future__ import annotations

import asyncio
import hashlib

import attrs

from kernel import StageContext, StageResult, WorkflowBuilder, define_stage


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


@attrs.frozen
class ClassifyConfig:
    labels: list[str] = attrs.field(
        factory=lambda: ["finance", "legal", "science", "sports", "technology"]
    )


@attrs.frozen
class SummarizeConfig:
    max_words: int = 12


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


async def classify(ctx: StageContext[Extraction, ClassifyConfig]) -> StageResult[Classification]:
    await asyncio.sleep(0)  # where a real model call would await
    words = {word.strip(".,;:!?").lower() for word in ctx.input.text.split()}
    found = [label for label in ctx.config.labels if KEYWORDS.get(label, set()) & words]
    tokens = len(ctx.input.text.split())
    return StageResult(
        Classification(categories=found or ["general"]),
        metrics={"total_tokens": tokens, "total_cost": round(tokens * 0.00001, 6)},
    )


def summarize(ctx: StageContext[Extraction, SummarizeConfig]) -> StageResult[Summary]:
    words = ctx.input.text.split()
    summary = " ".join(words[: ctx.config.max_words]) + (
        "…" if len(words) > ctx.config.max_words else ""
    )
    digest = hashlib.sha256(ctx.input.text.encode()).hexdigest()[:8]
    ctx.log("INFO", "summarised", {"digest": digest})
    return StageResult(Summary(summary=summary), metrics={"total_tokens": len(words)})


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
