"""Stage definitions and the context stage code runs with (SPEC §4.1, §4.2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeAlias, TypeVar, overload

import attrs
from attrs import field, frozen
from returns.result import Failure, Success

from kernel.ai.client import AI
from kernel.convert import json_problems, structure, to_json
from kernel.errors import StageOutputMissingError
from kernel.limits import Limit, check_limit
from kernel.records import Json
from kernel.retry import Retry, check_retry, check_timeout
from kernel.stage_checks import check_definition, required_callable
from kernel.status import LogLevel

I = TypeVar("I")
O = TypeVar("O")
C = TypeVar("C")
O2 = TypeVar("O2")
I_contra = TypeVar("I_contra", contravariant=True)
"""A stage's input: a stage taking a base class may follow one that outputs a subclass."""


@frozen
class StageResult(Generic[O]):
    """What ``execute`` returns to attach metrics to its output.

    ``metrics`` may hold ``total_cost`` (a number, ``Decimal`` or decimal string),
    ``total_tokens`` and ``calls``: added to the stage record's (which also count
    the calls ``ctx.ai`` recorded) and cost and tokens to the run's totals, when
    the stage completes. Anything else is kept on the stage record as given.
    """

    output: O
    metrics: dict[str, Any] = field(factory=dict)


def _positive(_: object, attribute: attrs.Attribute[Any], value: timedelta | None) -> None:
    # A number is refused, not read as seconds: the reference counts milliseconds.
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        raise ValueError(f"{attribute.name}: expected a positive timedelta, got {value!r}")


def _aware_or_none(_: object, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise ValueError(f"{attribute.name}: expected an aware UTC datetime, got {value!r}")


@frozen
class Suspend:
    """Returned by an async-batch stage: park the stage and poll it later.

    ``state`` must be JSON-serialisable; ``check_completion`` receives it.
    """

    state: Any
    poll_interval: timedelta = field(validator=_positive)
    max_wait: timedelta | None = field(default=None, validator=_positive)
    next_poll_at: datetime | None = field(default=None, validator=_aware_or_none)


@frozen
class CompletionCheck(Generic[O]):
    """The answer of ``check_completion``: ready (with output), failed, or not yet."""

    ready: bool
    output: O | Mapping[str, Any] | None = None
    error: str | None = None
    next_check_in: timedelta | None = field(default=None, validator=_positive)
    metrics: dict[str, Any] | None = None
    state: Any = None
    """Not ready: the stage's new ``suspended_state``, JSON-serialisable (``None``:
    keep the one it has); the next check receives it."""


PlainReturn: TypeAlias = "O | StageResult[O] | Mapping[str, Any]"
StageReturn: TypeAlias = "PlainReturn[O] | Suspend"
PlainExecuteFn: TypeAlias = (
    "Callable[[StageContext[I, C]], PlainReturn[O] | Awaitable[PlainReturn[O]]]"
)
"""``execute`` of a plain stage: it cannot return ``Suspend`` (SPEC §4.1)."""
ExecuteFn: TypeAlias = "Callable[[StageContext[I, C]], StageReturn[O] | Awaitable[StageReturn[O]]]"
CheckFn: TypeAlias = (
    "Callable[[Any, StageContext[I, C]], CompletionCheck[O] | Awaitable[CompletionCheck[O]]]"
)


class StageServices(Protocol):
    """What a stage context needs from the world; the kernel shell provides it."""

    def log(self, level: LogLevel, message: str, meta: Mapping[str, Any] | None) -> None: ...

    def load_output(self, stage_id: str) -> tuple[bool, Json]: ...

    def save_blob(self, key: str, value: Json) -> None: ...

    def load_blob(self, key: str) -> tuple[bool, Json]: ...

    def delete_blob(self, key: str) -> None: ...

    def now(self) -> datetime: ...

    def report_progress(self, report: ProgressReport) -> None:
        """Publish a ``ctx.progress`` call while the stage runs (throttled)."""
        ...


class StageStorage:
    """Blob storage scoped to one run (``ctx.storage``)."""

    def __init__(self, services: StageServices, workflow_run_id: str) -> None:
        self._services = services
        self._prefix = f"runs/{workflow_run_id}/storage/"

    def key(self, suffix: str) -> str:
        """The full blob key for ``suffix`` within this run."""
        return self._prefix + suffix

    def save(self, suffix: str, value: Json) -> None:
        """Store a JSON-serialisable value under ``suffix``."""
        self._services.save_blob(self.key(suffix), to_json(value))

    def load(self, suffix: str) -> Json:
        """The value stored under ``suffix``; ``KeyError`` if there is none."""
        found, value = self._services.load_blob(self.key(suffix))
        if not found:
            raise KeyError(f"no value stored under {suffix!r} for this run")
        return value

    def exists(self, suffix: str) -> bool:
        """Whether a value is stored under ``suffix``."""
        return self._services.load_blob(self.key(suffix))[0]

    def delete(self, suffix: str) -> None:
        """Remove the value under ``suffix`` (no error if there is none)."""
        self._services.delete_blob(self.key(suffix))


@frozen(kw_only=True)
class ProgressReport:
    """One ``ctx.progress`` call."""

    progress: float
    message: str
    details: dict[str, Any] | None
    at_index: int
    at: datetime | None = None
    """When ``ctx.progress`` was called (the event's timestamp)."""


class StageContext(Generic[I, C]):
    """What stage code sees: its typed input and config, and the run's services."""

    def __init__(
        self,
        *,
        workflow_run_id: str,
        stage_id: str,
        stage_name: str,
        stage_number: int,
        attempt: int,
        input: I,
        config: C,
        resume_state: Json,
        services: StageServices,
        stage_types: Mapping[str, type[Any]],
        ai: AI | None = None,
    ) -> None:
        self.workflow_run_id = workflow_run_id
        self.stage_id = stage_id
        self.stage_name = stage_name
        self.stage_number = stage_number
        self.attempt = attempt
        self.input = input
        self.config = config
        self.resume_state = resume_state
        self.storage = StageStorage(services, workflow_run_id)
        self.ai = ai or AI(
            None, None, workflow_run_id=workflow_run_id, stage_id=stage_id, attempt=attempt
        )
        """Model calls, priced and written to the usage ledger (SPEC §11); without
        ``ai=AIConfig(...)`` on the kernel its methods raise ``AINotConfiguredError``."""
        self.progress_reports: list[ProgressReport] = []
        self._services = services
        self._stage_types = stage_types

    def log(
        self, level: LogLevel | str, message: str, meta: Mapping[str, Any] | None = None
    ) -> None:
        """Write a log line for this stage (stored as it is written)."""
        self._services.log(LogLevel(level), message, meta)

    def progress(
        self, progress: float, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        """Report progress from 0 to 1, published as ``stage:progress`` while the stage
        runs: at most one write per stage every 0.5 s, and the last call is always
        written by the finish (SPEC §19). A number outside 0..1 is clamped.

        Raises:
            TypeError: ``progress`` is not a number (or is NaN), or ``message`` not a str.
            ValueError: ``details`` holds something that is not JSON.
        """
        if (
            isinstance(progress, bool)
            or not isinstance(progress, int | float)
            or progress != progress
        ):
            raise TypeError(f"progress: expected a number from 0 to 1, got {progress!r}")
        if not isinstance(message, str):
            raise TypeError(f"message: expected a str, got {message!r}")
        # Details become an event payload: refuse here what no store can write.
        stored = to_json(dict(details)) if details is not None else None
        problems = json_problems(stored, "details")
        if problems:
            raise ValueError("; ".join(problems))
        report = ProgressReport(
            progress=min(max(float(progress), 0.0), 1.0),
            message=message,
            details=stored,
            at_index=len(self.progress_reports),
            at=self._services.now(),
        )
        self.progress_reports.append(report)
        self._services.report_progress(report)

    @overload
    def require(self, stage: Stage[Any, O2, Any]) -> O2: ...

    @overload
    def require(self, stage: str) -> Any: ...

    def require(self, stage: Stage[Any, Any, Any] | str) -> Any:
        """The output of an earlier stage; raises if it has not completed."""
        found, value = self._lookup(stage)
        if not found:
            raise StageOutputMissingError(stage if isinstance(stage, str) else stage.id)
        return value

    @overload
    def optional(self, stage: Stage[Any, O2, Any]) -> O2 | None: ...

    @overload
    def optional(self, stage: str) -> Any | None: ...

    def optional(self, stage: Stage[Any, Any, Any] | str) -> Any | None:
        """The output of an earlier stage, or ``None`` if it has not completed."""
        found, value = self._lookup(stage)
        return value if found else None

    def _lookup(self, stage: Stage[Any, Any, Any] | str) -> tuple[bool, Any]:
        stage_id = stage if isinstance(stage, str) else stage.id
        found, raw = self._services.load_output(stage_id)
        if not found:
            return False, None
        output_type = self._stage_types.get(stage_id)
        if output_type is None:
            return True, raw
        match structure(raw, output_type, f"output of stage {stage_id!r}"):
            case Success(value):
                return True, value
            case Failure(problems):
                raise TypeError("; ".join(problems))
        return True, raw  # pragma: no cover - the match above is exhaustive


@frozen(kw_only=True)
class Stage(Generic[I_contra, O, C]):
    """A typed unit of work. Build one with :func:`define_stage`.

    ``Stage[Base, O, C]`` is a ``Stage[Derived, O, C]`` too (contravariant input):
    a stage that takes a base class may follow one that outputs a subclass.
    """

    id: str
    name: str
    input_type: type[I_contra] | None
    output_type: type[O]
    config_type: type[C]
    execute: ExecuteFn[I_contra, C, O]
    description: str | None = None
    dependencies: tuple[str, ...] = ()
    check_completion: CheckFn[I_contra, C, O] | None = None
    retry: Retry | None = None
    """This stage's retry policy; ``None``: the workflow's default (SPEC §19)."""
    timeout: timedelta | None = None
    """How long one attempt may run before it fails with ``STAGE_TIMEOUT``."""
    signal: str | None = None
    """The signal a signal stage waits for (``define_signal_stage``); it runs no code."""
    signal_timeout: timedelta | None = None
    """How long a signal stage waits before it fails with ``SIGNAL_TIMEOUT``."""
    batch_provider: str | None = None
    """The batch provider an LLM batch stage submits to (``define_llm_batch_stage``)."""
    limit: Limit | None = None
    """How many of its jobs may run at once and how often they may start (SPEC §15)."""

    @property
    def is_signal(self) -> bool:
        """Whether the stage waits for a signal instead of running code."""
        return self.signal is not None

    @property
    def is_async_batch(self) -> bool:
        """Whether the stage may suspend and be polled (``define_async_batch_stage``)."""
        return self.check_completion is not None

    def default_config(self) -> dict[str, Json]:
        """The config defaults in JSON form."""
        value: dict[str, Json] = to_json(self.config_type())
        return value


@overload
def define_stage(
    *,
    id: str,
    name: str,
    input: None,
    output: type[O],
    config: type[C],
    execute: PlainExecuteFn[None, C, O],
    description: str | None = None,
    dependencies: tuple[str, ...] | list[str] = (),
    retry: Retry | None = None,
    timeout: timedelta | None = None,
    limit: Limit | None = None,
) -> Stage[None, O, C]: ...


@overload
def define_stage(
    *,
    id: str,
    name: str,
    input: type[I],
    output: type[O],
    config: type[C],
    execute: PlainExecuteFn[I, C, O],
    description: str | None = None,
    dependencies: tuple[str, ...] | list[str] = (),
    retry: Retry | None = None,
    timeout: timedelta | None = None,
    limit: Limit | None = None,
) -> Stage[I, O, C]: ...


def define_stage(
    *,
    id: str,
    name: str,
    input: type[Any] | None,
    output: type[Any],
    config: type[Any],
    execute: ExecuteFn[Any, Any, Any] | None = None,  # required by the overloads
    description: str | None = None,
    dependencies: tuple[str, ...] | list[str] = (),
    retry: Retry | None = None,
    timeout: timedelta | None = None,
    limit: Limit | None = None,
) -> Stage[Any, Any, Any]:
    """Define a stage.

    ``input=None`` declares a stage that reads earlier outputs only through
    ``ctx.require``. ``config`` is an attrs class whose fields all have
    defaults. ``retry`` (a :class:`~kernel.retry.Retry`) overrides the
    workflow's retry policy; ``timeout`` fails an attempt that runs longer
    with ``STAGE_TIMEOUT``; ``limit`` (a :class:`~kernel.limits.Limit`) caps how
    many of its jobs run at once and how often they start. A bad definition
    raises :class:`~kernel.errors.DefinitionError` here, naming the stage (see
    :mod:`kernel.stage_checks`).

    >>> import attrs
    >>> @attrs.frozen
    ... class Out:
    ...     n: int
    >>> @attrs.frozen
    ... class NoConfig:
    ...     pass
    >>> count = define_stage(id="count", name="Count", input=None, output=Out,
    ...                      config=NoConfig, execute=lambda ctx: Out(n=1))
    >>> count.id, count.is_async_batch
    ('count', False)
    """
    check_definition(id, name, input, output, config)
    return Stage(
        id=id,
        name=name,
        input_type=input,
        output_type=output,
        config_type=config,
        execute=required_callable(id, "execute", execute),
        description=description,
        dependencies=tuple(dependencies),
        retry=check_retry(f"stage {id!r}", retry),
        timeout=check_timeout(f"stage {id!r}", timeout),
        limit=check_limit(f"stage {id!r}", limit),
    )


@overload
def define_async_batch_stage(
    *,
    id: str,
    name: str,
    input: None,
    output: type[O],
    config: type[C],
    execute: ExecuteFn[None, C, O],
    check_completion: CheckFn[None, C, O],
    description: str | None = None,
    dependencies: tuple[str, ...] | list[str] = (),
    retry: Retry | None = None,
    timeout: timedelta | None = None,
    limit: Limit | None = None,
) -> Stage[None, O, C]: ...


@overload
def define_async_batch_stage(
    *,
    id: str,
    name: str,
    input: type[I],
    output: type[O],
    config: type[C],
    execute: ExecuteFn[I, C, O],
    check_completion: CheckFn[I, C, O],
    description: str | None = None,
    dependencies: tuple[str, ...] | list[str] = (),
    retry: Retry | None = None,
    timeout: timedelta | None = None,
    limit: Limit | None = None,
) -> Stage[I, O, C]: ...


def define_async_batch_stage(
    *,
    id: str,
    name: str,
    input: type[Any] | None,
    output: type[Any],
    config: type[Any],
    execute: ExecuteFn[Any, Any, Any] | None = None,  # both required by the overloads
    check_completion: CheckFn[Any, Any, Any] | None = None,
    description: str | None = None,
    dependencies: tuple[str, ...] | list[str] = (),
    retry: Retry | None = None,
    timeout: timedelta | None = None,
    limit: Limit | None = None,
) -> Stage[Any, Any, Any]:
    """Define a stage that may return :class:`Suspend` and is polled later (SPEC §4.2)."""
    check_definition(id, name, input, output, config)
    return Stage(
        id=id,
        name=name,
        input_type=input,
        output_type=output,
        config_type=config,
        execute=required_callable(id, "execute", execute),
        description=description,
        dependencies=tuple(dependencies),
        retry=check_retry(f"stage {id!r}", retry),
        timeout=check_timeout(f"stage {id!r}", timeout),
        limit=check_limit(f"stage {id!r}", limit),
        check_completion=required_callable(id, "check_completion", check_completion),
    )
