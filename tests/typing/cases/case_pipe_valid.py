"""Well-typed workflows: this file must produce no error at all (SPEC §4.3)."""
# Expectation markers must stay on the line mypy reports, so this file is not reformatted.
# fmt: off
# ruff: noqa: E501

from typing import Any, reveal_type

import attrs

from kernel import StageContext, Workflow, WorkflowBuilder, define_stage


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
class Report:
    labels: list[str]
    summary: str


def _merge(ctx: StageContext[None, NoConfig]) -> Report:
    return Report(labels=ctx.require(classify).labels, summary=ctx.require(summarize).text)


def _merge_outputs(ctx: StageContext[dict[str, Any], NoConfig]) -> Report:
    outputs = ctx.input
    return Report(labels=outputs["classify"]["labels"], summary=outputs["summarize"]["text"])


def _recount(ctx: StageContext[None, NoConfig]) -> Extraction:
    return Extraction(words=ctx.require(extract).words)


# input=None: the stage reads earlier outputs through the context only.
merge = define_stage(id="merge", name="Merge", input=None, output=Report, config=NoConfig, execute=_merge)
# After a parallel group a stage may also take the {stage_id: output} mapping.
merge_outputs = define_stage(id="merge", name="Merge", input=dict, output=Report, config=NoConfig, execute=_merge_outputs)
recount = define_stage(id="recount", name="Recount", input=None, output=Extraction, config=NoConfig, execute=_recount)

# A straight pipeline: each stage takes the previous stage's output type.
straight: Workflow[Document, Labels] = (
    WorkflowBuilder("straight", "Straight", input=Document, output=Labels)
    .pipe(extract)
    .pipe(classify)
    .build()
)
# The builder tracks the last output type: only a stage taking it (or None) may follow.
reveal_type(WorkflowBuilder("w", "W", input=Document, output=Labels).pipe(extract))  # N: Revealed type is "kernel.workflows.WorkflowBuilder[case_pipe_valid.Document, case_pipe_valid.Labels, case_pipe_valid.Extraction]"

# A stage with input=None may follow any stage; the next stage gets its output.
with_none: Workflow[Document, Labels] = (
    WorkflowBuilder("with-none", "With none", input=Document, output=Labels)
    .pipe(extract)
    .pipe(recount)
    .pipe(classify)
    .build()
)

# After a parallel group: a stage with input=None, or one taking the mapping.
fan_in: Workflow[Document, Report] = (
    WorkflowBuilder("fan-in", "Fan in", input=Document, output=Report)
    .pipe(extract)
    .parallel([classify, summarize])
    .pipe(merge)
    .build()
)
fan_in_outputs: Workflow[Document, Report] = (
    WorkflowBuilder("fan-in-outputs", "Fan in (outputs)", input=Document, output=Report)
    .pipe(extract)
    .parallel([classify, summarize])
    .pipe(merge_outputs)
    .build()
)


# A stage taking a base class may follow one that outputs a subclass of it.
@attrs.frozen
class Keywords(Extraction):
    scores: list[float]


def _keywords(ctx: StageContext[Document, NoConfig]) -> Keywords:
    return Keywords(words=ctx.input.text.split(), scores=[])


keywords = define_stage(id="keywords", name="Keywords", input=Document, output=Keywords, config=NoConfig, execute=_keywords)
narrower_output: Workflow[Document, Labels] = (
    WorkflowBuilder("narrower", "Narrower", input=Document, output=Labels)
    .pipe(keywords)
    .pipe(classify)
    .build()
)
