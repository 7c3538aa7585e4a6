"""Signal stages (SPEC §13): a stage that runs no code and waits for the outside
world — a person approving, a webhook arriving — to send it its output."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from attrs import frozen

from kernel.errors import DefinitionError
from kernel.retry import check_timeout
from kernel.stage_checks import check_definition
from kernel.stages import Stage

O = TypeVar("O")


@frozen
class NoConfig:
    """The config of a signal stage: it has none."""


def _never_runs(ctx: object) -> NoReturn:
    raise AssertionError("a signal stage runs no code: the kernel waits for its signal")


def define_signal_stage(
    *,
    id: str,
    name: str,
    signal: str,
    output: type[O],
    timeout: timedelta | None = None,
    description: str | None = None,
) -> Stage[None, O, NoConfig]:
    """Define a stage that waits until the signal ``signal`` is sent to its run
    (``run.signal``) and outputs its payload, structured into ``output``.

    A signal sent before the stage waits is kept and taken as soon as it does.
    With ``timeout``, the stage fails with ``SIGNAL_TIMEOUT`` (not retried) once
    it has waited that long. Stages of one workflow that wait for the same
    signal must share its output type (``build()`` checks).

    >>> import attrs
    >>> @attrs.frozen
    ... class Approval:
    ...     approved: bool
    >>> approve = define_signal_stage(id="approve", name="Approve", signal="approval",
    ...                               output=Approval, timeout=timedelta(hours=48))
    >>> approve.is_signal, approve.signal, approve.signal_timeout
    (True, 'approval', datetime.timedelta(days=2))
    """
    check_definition(id, name, None, output, NoConfig)
    if not isinstance(signal, str) or not signal.strip():
        raise DefinitionError(f"stage {id!r}: signal must be a non-empty string, got {signal!r}")
    stage: Stage[Any, O, NoConfig] = Stage(
        id=id,
        name=name,
        input_type=None,
        output_type=output,
        config_type=NoConfig,
        execute=_never_runs,
        description=description,
        signal=signal,
        signal_timeout=check_timeout(f"stage {id!r}", timeout),
    )
    return stage


__all__ = ["NoConfig", "define_signal_stage"]
