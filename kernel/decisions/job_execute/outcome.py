"""``job.execute`` phase 2, purely: typed input and config for user code, and what it
returned read as an outcome (output and metrics, a suspension, or a failure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from returns.result import Failure, Success

from kernel.convert import json_problems, structure, to_json
from kernel.copying import evolve
from kernel.decisions.totals import metric_problems
from kernel.outcomes import CheckOutcome, Completed, Failed, NotReady, StageOutcome, Suspended
from kernel.records import Json
from kernel.stages import CompletionCheck, Stage, StageResult, Suspend


def _invalid_output(stage: Stage[Any, Any, Any], problems: list[str]) -> Failed:
    """A failure another attempt cannot change: what the stage returned does not fit."""
    return Failed(
        f"InvalidOutputError: stage {stage.id!r} returned " + "; ".join(problems),
        retryable=False,
    )


def _storage_problems(**values: Json) -> list[str]:
    """What in ``values`` (JSON form, by name) no store can write as JSON, or the
    totals cannot add up (``total_cost``, ``total_tokens``, ``calls``): caught here,
    so the finish transaction never breaks on user data."""
    problems = [line for root, value in values.items() for line in json_problems(value, root)]
    metrics = values.get("metrics")
    if isinstance(metrics, dict):
        problems += metric_problems(metrics)
    return problems


def _typed_output(
    stage: Stage[Any, Any, Any], output: Any, metrics: Mapping[str, Any]
) -> Completed | Failed:
    match structure(output, stage.output_type, "output"):
        case Success(typed):
            done = Completed(to_json(typed), to_json(dict(metrics)))
            problems = _storage_problems(output=done.output, metrics=done.metrics)
            return _invalid_output(stage, problems) if problems else done
        case Failure(problems):
            return _invalid_output(stage, problems)
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
            return _invalid_output(
                stage, ["Suspend but is not an async-batch stage (use define_async_batch_stage)"]
            )
        # Records hold JSON: check_completion sees the state as stored, on every store.
        parked = evolve(value, state=to_json(value.state))
        problems = _storage_problems(state=parked.state)
        return _invalid_output(stage, problems) if problems else Suspended(parked)
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
        if value.state is None:
            return NotReady(value.next_check_in)
        state = to_json(value.state)
        problems = _storage_problems(state=state)
        if problems:
            return _invalid_output(stage, problems)
        return NotReady(value.next_check_in, state)
    return _typed_output(stage, value.output, value.metrics or {})


def typed_input_and_config(
    stage: Stage[Any, Any, Any], input_json: Json, config_json: Json
) -> tuple[Any, Any] | Failed:
    """Structure a stage's input and config into its declared types, or fail the attempt."""
    typed_input: Any = None
    if stage.input_type is not None:
        # Structured from a copy, so user code changing its input in place cannot reach
        # the stored run input (a dict input type passes through unchanged).
        match structure(to_json(input_json), stage.input_type, "input"):
            case Failure(problems):
                return Failed("InvalidInputError: " + "; ".join(problems), retryable=False)
            case Success(value):
                typed_input = value
    match structure(config_json, stage.config_type, f"config.{stage.id}"):
        case Failure(problems):
            return Failed("InvalidConfigError: " + "; ".join(problems), retryable=False)
        case Success(config):
            return typed_input, config
    return Failed("unreachable")  # pragma: no cover


def timed_out(stage: Stage[Any, Any, Any], attempt: int, after: timedelta) -> Failed:
    """An attempt still running after the stage's ``timeout``: retried under its policy.

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
    >>> timed_out(s, 2, timedelta(seconds=1.5)).error
    "STAGE_TIMEOUT: stage 's' attempt 2 was still running after 0:00:01.500000"
    """
    return Failed(
        f"STAGE_TIMEOUT: stage {stage.id!r} attempt {attempt} was still running after {after}"
    )
