"""``output=`` must match the last group's output, or ``.build()`` is a type error (SPEC §19)."""
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
class Keywords(Extraction):
    scores: list[float]


@attrs.frozen
class Labels:
    labels: list[str]


@attrs.frozen
class NoConfig:
    pass


def _extract(ctx: StageContext[Document, NoConfig]) -> Extraction:
    return Extraction(words=ctx.input.text.split())


def _keywords(ctx: StageContext[Document, NoConfig]) -> Keywords:
    return Keywords(words=ctx.input.text.split(), scores=[])


def _classify(ctx: StageContext[Extraction, NoConfig]) -> Labels:
    return Labels(labels=ctx.input.words[:1])


extract = define_stage(id="extract", name="Extract", input=Document, output=Extraction, config=NoConfig, execute=_extract)
keywords = define_stage(id="keywords", name="Keywords", input=Document, output=Keywords, config=NoConfig, execute=_keywords)
classify = define_stage(id="classify", name="Classify", input=Extraction, output=Labels, config=NoConfig, execute=_classify)

# Matching: output= is the last stage's output type.
exact: Workflow[Document, Extraction] = WorkflowBuilder("exact", "Exact", input=Document, output=Extraction).pipe(extract).build()

# Matching: output= is a base class of the last stage's output type.
reveal_type(WorkflowBuilder("base", "Base", input=Document, output=Extraction).pipe(keywords).build())  # N: Revealed type is "kernel.workflows.Workflow[case_build_output.Document, case_build_output.Extraction]"

# Matching: a workflow ending with a parallel group outputs {stage_id: output}.
fanned: Workflow[Document, dict[str, Any]] = (
    WorkflowBuilder("fanned", "Fanned", input=Document, output=dict[str, Any])
    .pipe(extract)
    .parallel([classify])
    .build()
)

# Not matching: the last stage outputs an Extraction, not Labels.
WorkflowBuilder("w1", "W1", input=Document, output=Labels).pipe(extract).build()  # E: Cannot infer value of type parameter "Out" of "__get__" of "_Build"

# Not matching: a subclass is not enough the other way round.
WorkflowBuilder("w2", "W2", input=Document, output=Keywords).pipe(extract).build()  # E: Cannot infer value of type parameter "Out" of "__get__" of "_Build"

# Not matching: after a parallel group the output is the mapping, not Labels.
WorkflowBuilder("w3", "W3", input=Document, output=Labels).pipe(extract).parallel([classify]).build()  # E: Cannot infer value of type parameter "Out" of "__get__" of "_Build"

# In a chain over several lines, mypy reports the line where the chain starts.
(
    WorkflowBuilder("w4", "W4", input=Document, output=Labels)  # E: Cannot infer value of type parameter "Out" of "__get__" of "_Build"
    .pipe(extract)
    .build()
)
