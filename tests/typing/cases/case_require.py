"""``ctx.require(stage)`` is typed as that stage's output type (SPEC §4.1)."""
# Expectation markers must stay on the line mypy reports, so this file is not reformatted.
# fmt: off
# ruff: noqa: E501

from typing import reveal_type

import attrs

from kernel import StageContext, define_stage


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


def merge(ctx: StageContext[None, NoConfig]) -> None:
    reveal_type(ctx.require(extract))  # N: Revealed type is "case_require.Extraction"
    reveal_type(ctx.optional(summarize))  # N: Revealed type is "case_require.Summary | None"
    # By id string there is nothing to go on: the result is Any.
    reveal_type(ctx.require("extract"))  # N: Revealed type is "Any"
    # The typed output is checked like any other value.
    words: int = ctx.require(extract).words  # E: Incompatible types in assignment
    print(words)
