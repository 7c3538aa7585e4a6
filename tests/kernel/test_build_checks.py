"""``build()`` checks the types mypy checks, at run time too (SPEC §19).

A stage must take what the group before it gives (the workflow's input, the
previous stage's output, or ``{stage_id: output}`` after a parallel group), or a
base class of it; ``output=`` must be what the last group gives, or a base
class of it. Builders here are typed ``Any`` so that mypy lets the wrong
pipelines through to the run-time check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import attrs
import pytest

from kernel import DefinitionError, Stage, StageContext, Workflow, WorkflowBuilder, define_stage


@attrs.frozen
class Text:
    text: str


@attrs.frozen
class Pages:
    count: int


@attrs.frozen
class Note(Text):
    """A subclass: goes wherever a ``Text`` is expected."""

    author: str = "?"


@attrs.frozen
class NoConfig:
    pass


class Counts(TypedDict):
    count: int


def stage(stage_id: str, input: type[Any] | None, output: type[Any]) -> Stage[Any, Any, Any]:
    def execute(ctx: StageContext[Any, NoConfig]) -> Any:
        raise AssertionError("never run")

    return define_stage(
        id=stage_id, name=stage_id.title(), input=input, output=output, config=NoConfig,
        execute=execute,
    )  # fmt: skip


def build(
    *groups: Stage[Any, Any, Any] | Sequence[Stage[Any, Any, Any]],
    input: Any = Text,
    output: Any = object,
) -> Workflow[Any, Any]:
    """The workflow ``docs``: a stage is piped, a list is a parallel group."""
    builder: WorkflowBuilder[Any, Any, Any] = WorkflowBuilder(
        "docs", "Docs", input=input, output=output
    )
    for group in groups:
        builder = builder.pipe(group) if isinstance(group, Stage) else builder.parallel(group)
    return builder.build()


def refusal(*groups: Stage[Any, Any, Any] | Sequence[Stage[Any, Any, Any]], **types: Any) -> str:
    with pytest.raises(DefinitionError) as raised:
        build(*groups, **types)
    return str(raised.value)


extract = stage("extract", Text, Pages)
summarize = stage("summarize", Text, Text)
count = stage("count", Pages, Pages)


# -- refused ----------------------------------------------------------------------


def test_a_stage_that_does_not_take_the_previous_output_is_refused() -> None:
    assert refusal(extract, summarize) == (
        "workflow 'docs': stage 'summarize' takes Text, but the previous stage 'extract' "
        "outputs Pages (Pages is not Text or a subclass of it)"
    )


def test_a_first_stage_that_does_not_take_the_workflow_input_is_refused() -> None:
    assert refusal(extract, input=Pages) == (
        "workflow 'docs': stage 'extract' takes Text, but the workflow's input is Pages "
        "(Pages is not Text or a subclass of it)"
    )


def test_a_base_class_where_its_subclass_is_expected_is_refused() -> None:
    """The subclass relation goes one way: a ``Text`` is not a ``Note``."""
    takes_note = stage("annotate", Note, Note)
    assert refusal(summarize, takes_note) == (
        "workflow 'docs': stage 'annotate' takes Note, but the previous stage 'summarize' "
        "outputs Text (Text is not Note or a subclass of it)"
    )


def test_every_stage_of_a_parallel_group_is_checked() -> None:
    assert refusal(extract, [count, summarize]) == (
        "workflow 'docs': stage 'summarize' takes Text, but the previous stage 'extract' "
        "outputs Pages (Pages is not Text or a subclass of it)"
    )


def test_a_stage_after_a_parallel_group_must_take_the_mapping() -> None:
    assert refusal(
        extract, [count, stage("recount", Pages, Pages)], stage("total", Pages, Pages)
    ) == (
        "workflow 'docs': stage 'total' takes Pages, but the previous parallel group "
        "('count', 'recount') gives {stage_id: output} (dict is not Pages or a subclass of it)"
    )


def test_an_output_the_last_stage_does_not_give_is_refused() -> None:
    assert refusal(extract, output=Text) == (
        "workflow 'docs': output= is Text, but the last stage 'extract' outputs Pages "
        "(Pages is not Text or a subclass of it)"
    )


def test_an_output_after_a_last_parallel_group_must_be_a_mapping() -> None:
    assert refusal(extract, [count, stage("recount", Pages, Pages)], output=Pages) == (
        "workflow 'docs': output= is Pages, but the last parallel group ('count', 'recount') "
        "gives {stage_id: output} (dict is not Pages or a subclass of it)"
    )


def test_classes_with_the_same_name_are_told_apart_by_module() -> None:
    other_text = attrs.make_class("Text", {"text": attrs.field()})
    other_text.__module__ = "elsewhere"
    message = refusal(summarize, stage("elsewhere", other_text, Text))
    assert re.search(r"takes elsewhere\.Text, but .* outputs tests\.kernel\.\S+\.Text \(", message)


def test_structural_problems_are_reported_before_types() -> None:
    """A duplicate stage id is the first thing wrong, whatever the types."""
    assert refusal(extract, extract) == "workflow 'docs': duplicate stage id 'extract'"


# -- accepted ---------------------------------------------------------------------


def test_the_same_class_all_along_is_accepted() -> None:
    workflow = build(summarize, attrs.evolve(summarize, id="again"), output=Text)
    assert [s.id for s in workflow.stages] == ["summarize", "again"]


def test_a_subclass_goes_where_its_base_class_is_expected() -> None:
    """A stage taking ``Text`` after one giving a ``Note``; ``output=Text`` for a run
    that ends with a ``Note``; a ``Note`` as the run's input."""
    annotate = stage("annotate", Text, Note)
    workflow = build(
        annotate, summarize, attrs.evolve(annotate, id="last"), input=Note, output=Text
    )
    assert workflow.output_type is Text


@pytest.mark.parametrize("accepting", [dict, Mapping], ids=["dict", "Mapping"])
def test_a_mapping_input_after_a_parallel_group_is_accepted(accepting: type[Any]) -> None:
    join = stage("join", accepting, Pages)
    build(extract, [count, stage("recount", Pages, Pages)], join, output=Pages)


@pytest.mark.parametrize(
    "output",
    [dict, dict[str, Any], Mapping[str, Any], Mapping, object, Any],
    ids=["dict", "dict[str, Any]", "Mapping[str, Any]", "Mapping", "object", "Any"],
)
def test_a_mapping_output_after_a_last_parallel_group_is_accepted(output: Any) -> None:
    build(extract, [count, stage("recount", Pages, Pages)], output=output)


def test_a_stage_with_input_none_may_follow_anything() -> None:
    anything = stage("anything", None, Text)
    build(extract, anything, [summarize, stage("also", None, Pages)], stage("last", None, Text))


def test_any_and_object_are_accepted_where_a_type_is_expected() -> None:
    """``Any`` is not checked; every class is a subclass of ``object``."""
    build(extract, input=Any, output=Any)
    build(extract, output=object)
    build(extract, input=Note | None, output=Pages | None)  # unions: left to mypy


def test_a_one_stage_parallel_group_may_hand_on_its_output_or_the_mapping() -> None:
    """``parallel([x])`` is typed as the mapping by mypy; at run time the next group
    gets ``x``'s output. Either reading is accepted."""
    build(extract, [count], stage("recount", Pages, Pages), output=Pages)
    build(extract, [count], stage("join", dict, Pages), output=Pages)
    build(extract, [count], output=dict[str, Any])


def test_a_typed_dict_takes_any_mapping_and_goes_where_a_mapping_is_expected() -> None:
    """A ``TypedDict`` is structural: run time leaves its keys to mypy."""
    counted = stage("counted", Text, Counts)
    build(counted, stage("uses", Counts, Pages), output=Pages)
    build(counted, stage("mapping", dict, Pages), output=Mapping[str, Any])
    build(extract, [count, stage("recount", Pages, Pages)], stage("uses", Counts, Pages))


def test_a_typed_dict_is_still_not_an_attrs_class() -> None:
    assert refusal(stage("uses", Counts, Pages), input=Text) == (
        "workflow 'docs': stage 'uses' takes Counts, but the workflow's input is Text "
        "(Text is not Counts or a subclass of it)"
    )
