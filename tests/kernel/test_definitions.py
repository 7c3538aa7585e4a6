"""What ``define_stage`` and ``define_async_batch_stage`` refuse, at definition time
(SPEC §4.1, §4.2): bad input and output types, and a missing or uncallable
``execute`` / ``check_completion``; each with a ``DefinitionError`` naming the stage.

An input or output may be an attrs class or a mapping type: ``input=dict`` is how
a stage after a parallel group declares its ``{stage_id: output}`` input (SPEC
§4.3), and a ``TypedDict`` is checked like an attrs class (``test_run_create``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, TypedDict, get_overloads

import attrs
import pytest

from kernel import (
    CompletionCheck,
    DefinitionError,
    Stage,
    StageContext,
    define_async_batch_stage,
    define_stage,
)


@attrs.frozen
class Text:
    text: str


@attrs.frozen
class Words:
    words: list[str]


@attrs.frozen
class NoConfig:
    pass


class Plain:
    """A class, but not an attrs class."""


class Pages(TypedDict):
    title: str
    pages: int


def split_words(ctx: StageContext[Any, NoConfig]) -> Any:
    return Words(ctx.input.text.split())


def check(state: Any, ctx: StageContext[Any, NoConfig]) -> CompletionCheck[Any]:
    return CompletionCheck(ready=False)


Define = Callable[..., Stage[Any, Any, Any]]
DEFINE_FUNCTIONS = pytest.mark.parametrize(
    "define", [define_stage, define_async_batch_stage], ids=lambda define: define.__name__
)
NOT_DATA_TYPES = pytest.mark.parametrize(
    "bad",
    [int, str, list, Plain, Text("a"), "Text", dict[str, Any]],
    ids=["int", "str", "list", "plain-class", "instance", "string", "generic-alias"],
)
DATA_TYPES = "an attrs class or a mapping type (dict, TypedDict)"


def define_split(define: Define, *, without: str | None = None, **changes: Any) -> Any:
    """Define the stage "split" with ``define``, changing or leaving out some values."""
    values: dict[str, Any] = {
        "id": "split",
        "name": "Split",
        "input": Text,
        "output": Words,
        "config": NoConfig,
        "execute": split_words,
    }
    if define is define_async_batch_stage:
        values["check_completion"] = check
    values.update(changes)
    if without is not None:
        del values[without]
    return define(**values)


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@DEFINE_FUNCTIONS
@NOT_DATA_TYPES
def test_a_stage_definition_refuses_an_input_type_that_is_not_an_attrs_class(
    define: Define, bad: object
) -> None:
    message = f"stage 'split': input must be {DATA_TYPES} or None, got {bad!r}"

    with pytest.raises(DefinitionError, match=exactly(message)):
        define_split(define, input=bad)


@DEFINE_FUNCTIONS
@NOT_DATA_TYPES
def test_a_stage_definition_refuses_an_output_type_that_is_not_an_attrs_class(
    define: Define, bad: object
) -> None:
    message = f"stage 'split': output must be {DATA_TYPES}, got {bad!r}"

    with pytest.raises(DefinitionError, match=exactly(message)):
        define_split(define, output=bad)


@DEFINE_FUNCTIONS
def test_a_stage_definition_refuses_none_as_the_output_type(define: Define) -> None:
    with pytest.raises(
        DefinitionError, match=exactly(f"stage 'split': output must be {DATA_TYPES}, got None")
    ):
        define_split(define, output=None)


@DEFINE_FUNCTIONS
@pytest.mark.parametrize(
    "good", [Text, dict, Mapping, Pages], ids=["attrs", "dict", "mapping", "typed-dict"]
)
def test_a_stage_definition_accepts_an_attrs_class_or_a_mapping_type_as_input_and_output(
    define: Define, good: type[Any]
) -> None:
    stage = define_split(define, input=good, output=good)

    assert (stage.input_type, stage.output_type) == (good, good)


@DEFINE_FUNCTIONS
def test_a_stage_definition_accepts_none_as_the_input_type(define: Define) -> None:
    assert define_split(define, input=None).input_type is None


@DEFINE_FUNCTIONS
@pytest.mark.parametrize("bad", [None, "split_words", 42], ids=["none", "string", "number"])
def test_a_stage_definition_refuses_an_execute_that_is_not_callable(
    define: Define, bad: object
) -> None:
    message = f"stage 'split': execute must be callable, got {bad!r}"

    with pytest.raises(DefinitionError, match=exactly(message)):
        define_split(define, execute=bad)


@DEFINE_FUNCTIONS
def test_a_stage_definition_refuses_a_missing_execute(define: Define) -> None:
    message = "stage 'split': execute must be callable, got None"

    with pytest.raises(DefinitionError, match=exactly(message)):
        define_split(define, without="execute")


@pytest.mark.parametrize("bad", [None, "check", 42], ids=["none", "string", "number"])
def test_define_async_batch_stage_refuses_a_check_completion_that_is_not_callable(
    bad: object,
) -> None:
    message = f"stage 'split': check_completion must be callable, got {bad!r}"

    with pytest.raises(DefinitionError, match=exactly(message)):
        define_split(define_async_batch_stage, check_completion=bad)


def test_define_async_batch_stage_refuses_a_missing_check_completion() -> None:
    message = "stage 'split': check_completion must be callable, got None"

    with pytest.raises(DefinitionError, match=exactly(message)):
        define_split(define_async_batch_stage, without="check_completion")


def test_the_typed_signatures_still_require_execute_and_check_completion() -> None:
    """Only the implementations default them to ``None`` (to refuse their absence
    with a ``DefinitionError``); what mypy checks calls against are the overloads."""
    for define, required in (
        (define_stage, {"execute"}),
        (define_async_batch_stage, {"execute", "check_completion"}),
    ):
        overloads = get_overloads(define)
        assert len(overloads) == 2
        for overload in overloads:
            parameters = inspect.signature(overload).parameters
            assert {
                name for name in required if parameters[name].default is inspect.Parameter.empty
            } == required


def test_the_first_problem_of_a_definition_is_the_one_reported() -> None:
    """The id is checked before the types, the types before ``execute``."""
    with pytest.raises(
        DefinitionError, match=exactly("stage id: expected a non-empty string, got ''")
    ):
        define_split(define_stage, id="", input=int, execute=None)
    with pytest.raises(
        DefinitionError,
        match=exactly(f"stage 'split': input must be {DATA_TYPES} or None, got <class 'int'>"),
    ):
        define_split(define_stage, input=int, execute=None)
