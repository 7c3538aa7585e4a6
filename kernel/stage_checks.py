"""What ``define_stage`` and friends refuse, at definition time (SPEC §4.1, §4.2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import attrs

from kernel.errors import DefinitionError

F = TypeVar("F")

DATA_TYPES = "an attrs class or a mapping type (dict, TypedDict)"
"""What an input or output type may be: a mapping type is what a stage after a
parallel group receives (``input=dict``, SPEC §4.3); a ``TypedDict`` is checked
like an attrs class."""


def is_data_type(cls: object) -> bool:
    """Whether ``cls`` may be a stage's input or output type.

    >>> is_data_type(dict), is_data_type(int), is_data_type({})
    (True, False, False)
    """
    return isinstance(cls, type) and (attrs.has(cls) or issubclass(cls, Mapping))


def check_definition(
    stage_id: str,
    name: str,
    input: object,
    output: object,
    config: object,
) -> None:
    """Raise :class:`DefinitionError` naming the stage and what is wrong with it.

    >>> check_definition("split", "Split", None, int, object)
    Traceback (most recent call last):
    ...
    kernel.errors.DefinitionError: stage 'split': output must be an attrs class or a mapping type (dict, TypedDict), got <class 'int'>
    """  # noqa: E501
    if not isinstance(stage_id, str) or not stage_id:
        raise DefinitionError(f"stage id: expected a non-empty string, got {stage_id!r}")
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"stage {stage_id!r}: name must be a non-empty string")
    if input is not None and not is_data_type(input):
        raise DefinitionError(
            f"stage {stage_id!r}: input must be {DATA_TYPES} or None, got {input!r}"
        )
    if not is_data_type(output):
        raise DefinitionError(f"stage {stage_id!r}: output must be {DATA_TYPES}, got {output!r}")
    check_config(stage_id, config)


def check_config(stage_id: str, config: object) -> None:
    """A config type is an attrs class whose fields all have defaults."""
    if not isinstance(config, type):
        raise DefinitionError(f"stage {stage_id!r}: config must be a class, got {config!r}")
    if not attrs.has(config):
        raise DefinitionError(f"stage {stage_id!r}: config must be an attrs class, got {config!r}")
    try:
        config()
    except TypeError as exc:
        raise DefinitionError(
            f"stage {stage_id!r}: every config field needs a default ({exc})"
        ) from None


def required_callable(stage_id: str, role: str, fn: F | None) -> F:
    """``fn`` itself: ``execute`` and ``check_completion`` are required and callable.

    >>> required_callable("split", "execute", None)
    Traceback (most recent call last):
    ...
    kernel.errors.DefinitionError: stage 'split': execute must be callable, got None
    """
    if fn is None or not callable(fn):
        raise DefinitionError(f"stage {stage_id!r}: {role} must be callable, got {fn!r}")
    return fn
