"""What user code did, as values: the outcomes the shell hands back to decisions.

The shell runs user code outside any transaction (``execute``,
``check_completion``) and publishes events through the sink; what came of it
is one of these values, which the next decision reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from attrs import frozen

from kernel.records import Json
from kernel.stages import ProgressReport, Suspend


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
class AwaitSignal:
    """A signal stage is ready to wait for ``signal`` (it runs no code): the finish
    takes a buffered signal of that name or parks the stage (SPEC §13)."""

    signal: str
    timeout: timedelta | None = None


@frozen
class Failed:
    """The attempt failed with ``error``.

    ``retryable`` is false for failures another attempt cannot change (input,
    config or output that does not fit the stage's types): those fail at once.
    """

    error: str
    retryable: bool = True
    traceback: str | None = None
    """The formatted traceback, when the attempt raised."""


@frozen
class NotReady:
    """``check_completion`` says: not yet; ask again after ``next_check_in``."""

    next_check_in: timedelta | None
    state: Json = None
    """The stage's new ``suspended_state`` (``None``: keep the one it has)."""


StageOutcome = Completed | Suspended | AwaitSignal | Failed
CheckOutcome = Completed | NotReady | Failed


@frozen
class StageRun:
    """What one run of ``execute`` did, and the progress it reported on the way."""

    outcome: StageOutcome
    progress: tuple[ProgressReport, ...] = ()


Deliveries = Mapping[str, str | None]
"""Per outbox event id: ``None`` if the sink took it, else the error it raised.
Events missing from the mapping were not attempted (held back)."""
