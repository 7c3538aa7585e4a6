"""A mis-piped stage is a type error, reported on the line that pipes it (SPEC §4.3)."""
# Expectation markers must stay on the line mypy reports, so this file is not reformatted.
# fmt: off
# ruff: noqa: E501

import attrs

from kernel import StageContext, WorkflowBuilder, define_stage


@attrs.frozen
class Document:
    text: str


@attrs.frozen
class Extraction:
    words: list[str]


@attrs.frozen
class Labels:
    labels: list[str]


@attrs.frozen
class Summary:
    text: str


@attrs.frozen
class NoConfig:
    pass


def _extract(ctx: StageContext[Document, NoConfig]) -> Extraction:
    return Extraction(words=ctx.input.text.split())


def _classify(ctx: StageContext[Extraction, NoConfig]) -> Labels:
    return Labels(labels=ctx.input.words[:1])


def _summarize(ctx: StageContext[Extraction, NoConfig]) -> Summary:
    return Summary(text=" ".join(ctx.input.words[:3]))


extract = define_stage(id="extract", name="Extract", input=Document, output=Extraction, config=NoConfig, execute=_extract)
classify = define_stage(id="classify", name="Classify", input=Extraction, output=Labels, config=NoConfig, execute=_classify)
summarize = define_stage(id="summarize", name="Summarize", input=Extraction, output=Summary, config=NoConfig, execute=_summarize)


@attrs.frozen
class Invoice:
    total: int


def _bill(ctx: StageContext[Invoice, NoConfig]) -> Labels:
    return Labels(labels=[str(ctx.input.total)])


bill = define_stage(id="bill", name="Bill", input=Invoice, output=Labels, config=NoConfig, execute=_bill)

# Group 1 receives the run input (a Document), but `classify` takes an Extraction.
WorkflowBuilder("w1", "W1", input=Document, output=Labels).pipe(classify)  # E: "pipe" of "WorkflowBuilder"

# `extract` produces an Extraction, but `bill` takes an Invoice: the error is on
# the `.pipe(bill)` line of the chain, not on the first line of the statement.
(
    WorkflowBuilder("w2", "W2", input=Document, output=Labels)
    .pipe(extract)
    .pipe(bill)  # E: "pipe" of "WorkflowBuilder"
    .build()
)

# After a parallel group the input is the {stage_id: output} mapping, not an Extraction.
(
    WorkflowBuilder("w3", "W3", input=Document, output=Labels)
    .pipe(extract)
    .parallel([classify, summarize])
    .pipe(classify)  # E: "pipe" of "WorkflowBuilder"
    .build()
)


# A stage taking a subclass may not follow one that outputs its base class.
@attrs.frozen
class Keywords(Extraction):
    scores: list[float]


def _rank(ctx: StageContext[Keywords, NoConfig]) -> Labels:
    return Labels(labels=ctx.input.words[:1])


rank = define_stage(id="rank", name="Rank", input=Keywords, output=Labels, config=NoConfig, execute=_rank)
(
    WorkflowBuilder("w4", "W4", input=Document, output=Labels)
    .pipe(extract)
    .pipe(rank)  # E: "pipe" of "WorkflowBuilder"
    .build()
)
