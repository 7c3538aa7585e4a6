"""Turning what user code returned into a stage outcome, purely."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from attrs import frozen
from returns.result import Failure, Success

from kernel.convert import structure, to_json
from kernel.records import Json
from kernel.stages import CompletionCheck, Stage, StageResult, Suspend


@frozen
class Completed:
    """The stage produced ``output`` (JSON form) and ``metrics``."""

    output: Json
    metrics: dict[str, Json]


@frozen
class Suspended:
    """An async-batch stage parked itself."""

    suspend: Suspend


@frozen
class Failed:
    """The attempt failed with ``error``.

    ``retryable`` is false for failures another attempt cannot change (input,
    config or output that does not fit the stage's types): those fail at once.
    """

    error: str
    retryable: bool = True


@frozen
class NotReady:
    """``check_completion`` says: not yet; ask again after ``next_check_in``."""

    next_check_in: timedelta | None


StageOutcome = Completed | Suspended | Failed
CheckOutcome = Completed | NotReady | Failed


def _typed_output(
    stage: Stage[Any, Any, Any], output: Any, metrics: Mapping[str, Any]
) -> Completed | Failed:
    match structure(output, stage.output_type, "output"):
        case Success(typed):
            return Completed(to_json(typed), to_json(dict(metrics)))
        case Failure(problems):
            return Failed(
                f"InvalidOutputError: stage {stage.id!r} returned " + "; ".join(problems),
                retryable=False,
            )
    return Failed("unreachable")  # pragma: no cover


def interpret_return(stage: Stage[Any, Any, Any], value: Any) -> StageOutcome:
    """What ``execute`` returned: output, ``StageResult``, or ``Suspend``.

    >>> import attrs
    >>> from kernel.stages import define_stage
    >>> @attrs.frozen
    ... class Out:
    ...     n: int
    >>> @attrs.frozen
    ... class NoConfig:
    ...     pass
    >>> s = define_stage(id="s", name="S", input=None, output=Out, config=NoConfig,
    ...                  execute=lambda ctx: Out(1))
    >>> interpret_return(s, {"n": 2})
    Completed(output={'n': 2}, metrics={})
    >>> interpret_return(s, {"n": "two"}).error
    "InvalidOutputError: stage 's' returned output.n: expected int, got 'two'"
    """
    if isinstance(value, Suspend):
        if not stage.is_async_batch:
            return Failed(
                f"InvalidOutputError: stage {stage.id!r} returned Suspend but is not an "
                "async-batch stage (use define_async_batch_stage)"
            )
        return Suspended(value)
    if isinstance(value, StageResult):
        return _typed_output(stage, value.output, value.metrics)
    return _typed_output(stage, value, {})


def interpret_check(stage: Stage[Any, Any, Any], value: Any) -> CheckOutcome:
    """What ``check_completion`` returned."""
    if not isinstance(value, CompletionCheck):
        return Failed(
            f"InvalidOutputError: check_completion of stage {stage.id!r} must return "
            f"CompletionCheck, got {type(value).__name__}"
        )
    if value.error is not None:
        return Failed(value.error)
    if not value.ready:
        return NotReady(value.next_check_in)
    return _typed_output(stage, value.output, value.metrics or {})
