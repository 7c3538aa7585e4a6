"""LLM batch stages (SPEC §12): submit many model requests as one provider batch, exactly
once, poll it durably, and hand the per-item results to ``collect``.

An LLM batch stage is an async-batch stage whose ``execute`` and
``check_completion`` are the engine's (:mod:`kernel.llm_batch_engine`); they
wrap the user's ``build`` and ``collect``. How a submission survives a crash
without paying twice is told in ``docs/batch.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar, overload

from attrs import frozen

from kernel.ai.batch import BatchItem, BatchResults
from kernel.ai.ports import BatchProvider
from kernel.ai.prices import PriceTable
from kernel.commands import Dispatch
from kernel.errors import DefinitionError
from kernel.limits import Limit, check_limit
from kernel.stage_checks import check_definition, required_callable
from kernel.stages import Stage, StageContext

I = TypeVar("I")
O = TypeVar("O")
C = TypeVar("C")

BuildFn = Callable[[StageContext[Any, Any]], Sequence[BatchItem]]
CollectFn = Callable[[StageContext[Any, Any], BatchResults], Any]


class BatchServices(Protocol):
    """What an LLM batch stage's engine code needs from the kernel during one attempt
    or check; the kernel shell provides it (:mod:`kernel.shell.batch_services`)."""

    stage_record_id: str
    """The id of the stage's record (part of the batch tag)."""

    def provider(self, name: str) -> BatchProvider | None:
        """The kernel's batch provider called ``name``."""
        ...

    def prices(self) -> PriceTable:
        """The kernel's price table (``ai=AIConfig(prices=...)``; empty without one)."""
        ...

    def spend(self) -> tuple[Decimal, Decimal | None]:
        """The run's recorded spend and its budget (``None``: no budget)."""
        ...

    @property
    def dispatch(self) -> Dispatch:
        """The kernel's ``dispatch`` (``batch.intent``, ``usage.record``)."""
        ...

    def now(self) -> datetime:
        """The kernel clock's time."""
        ...


@frozen(kw_only=True)
class LLMBatch:
    """An LLM batch stage's own settings (what ``define_llm_batch_stage`` was given)."""

    stage_id: str
    provider: str
    build: BuildFn
    collect: CollectFn
    poll_interval: timedelta
    max_wait: timedelta
    max_item_retries: int


def _positive(stage_id: str, name: str, value: object) -> timedelta:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise DefinitionError(
            f"stage {stage_id!r}: {name} must be a positive timedelta, got {value!r}"
        )
    return value


def _checked(
    id: str,
    provider: object,
    build: object,
    collect: object,
    poll_interval: object,
    max_wait: object,
    max_item_retries: object,
) -> LLMBatch:
    if not isinstance(provider, str) or not provider or ":" in provider:
        raise DefinitionError(
            f"stage {id!r}: provider must be a batch provider's name (no ':'), got {provider!r}"
        )
    interval = _positive(id, "poll_interval", poll_interval)
    wait = _positive(id, "max_wait", max_wait)
    if wait < interval:
        raise DefinitionError(
            f"stage {id!r}: max_wait ({wait}) must be at least poll_interval ({interval})"
        )
    retries = max_item_retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise DefinitionError(
            f"stage {id!r}: max_item_retries must be an int >= 0, got {max_item_retries!r}"
        )
    return LLMBatch(
        stage_id=id,
        provider=provider,
        build=required_callable(id, "build", build),  # type: ignore[arg-type]
        collect=required_callable(id, "collect", collect),  # type: ignore[arg-type]
        poll_interval=interval,
        max_wait=wait,
        max_item_retries=retries,
    )


@overload
def define_llm_batch_stage(
    *,
    id: str,
    name: str,
    input: None,
    output: type[O],
    config: type[C],
    provider: str,
    build: Callable[[StageContext[None, C]], Sequence[BatchItem]],
    collect: Callable[[StageContext[None, C], BatchResults], O | Mapping[str, Any]],
    poll_interval: timedelta = ...,
    max_wait: timedelta = ...,
    max_item_retries: int = 0,
    description: str | None = None,
    dependencies: tuple[str, ...] | list[str] = (),
    limit: Limit | None = None,
) -> Stage[None, O, C]: ...


@overload
def define_llm_batch_stage(
    *,
    id: str,
    name: str,
    input: type[I],
    output: type[O],
    config: type[C],
    provider: str,
    build: Callable[[StageContext[I, C]], Sequence[BatchItem]],
    collect: Callable[[StageContext[I, C], BatchResults], O | Mapping[str, Any]],
    poll_interval: timedelta = ...,
    max_wait: timedelta = ...,
    max_item_retries: int = 0,
    description: str | None = None,
    dependencies: tuple[str, ...] | list[str] = (),
    limit: Limit | None = None,
) -> Stage[I, O, C]: ...


def define_llm_batch_stage(
    *,
    id: str,
    name: str,
    input: type[Any] | None,
    output: type[Any],
    config: type[Any],
    provider: str,
    build: Callable[..., Sequence[BatchItem]],
    collect: Callable[..., Any],
    poll_interval: timedelta = timedelta(minutes=1),
    max_wait: timedelta = timedelta(hours=24),
    max_item_retries: int = 0,
    description: str | None = None,
    dependencies: tuple[str, ...] | list[str] = (),
    limit: Limit | None = None,
) -> Stage[Any, Any, Any]:
    """Define a stage that sends the requests ``build(ctx)`` returns to the batch
    provider named ``provider`` as one batch, waits for it durably, and outputs what
    ``collect(ctx, results)`` returns.

    ``build`` runs again when failed items are resubmitted or an attempt is
    retried: it must return the same items for the same input and config.
    Each item's ``request.model`` is ``provider:model``. The batch is submitted
    at most once per generation, whatever crashes (``docs/batch.md``); the first
    status check is ``poll_interval`` after submission, each later gap 1.5 times
    the one before (at most 10 intervals); past ``max_wait`` the batch is
    cancelled and the stage fails with ``BATCH_TIMEOUT``. Items that failed are
    resubmitted, as a new batch, up to ``max_item_retries`` times. ``limit`` caps
    how many of its jobs run at once and how often they start (SPEC §15).

    >>> import attrs
    >>> @attrs.frozen
    ... class Out:
    ...     summaries: dict[str, str]
    >>> @attrs.frozen
    ... class NoConfig:
    ...     pass
    >>> stage = define_llm_batch_stage(
    ...     id="summarise", name="Summarise", input=None, output=Out, config=NoConfig,
    ...     provider="openai", build=lambda ctx: [],
    ...     collect=lambda ctx, results: Out({}))
    >>> stage.batch_provider, stage.is_async_batch
    ('openai', True)
    >>> define_llm_batch_stage(
    ...     id="summarise", name="Summarise", input=None, output=Out, config=NoConfig,
    ...     provider="openai", build=lambda ctx: [], collect=lambda ctx, results: Out({}),
    ...     max_item_retries=-1)
    Traceback (most recent call last):
    ...
    kernel.errors.DefinitionError: stage 'summarise': max_item_retries must be an int >= 0, got -1

    Raises:
        DefinitionError: naming the stage and the argument that is wrong.
    """
    # Imported here: the engine imports this module's protocol.
    from kernel.llm_batch_engine import BatchCheck, BatchExecute

    check_definition(id, name, input, output, config)
    spec = _checked(id, provider, build, collect, poll_interval, max_wait, max_item_retries)
    return Stage(
        id=id,
        name=name,
        input_type=input,
        output_type=output,
        config_type=config,
        execute=BatchExecute(spec),
        check_completion=BatchCheck(spec),
        description=description,
        dependencies=tuple(dependencies),
        batch_provider=spec.provider,
        limit=check_limit(f"stage {id!r}", limit),
    )


def check_batch_providers(stages: Iterable[Stage[Any, Any, Any]], names: Collection[str]) -> None:
    """Refuse LLM batch stages whose provider the kernel does not have.

    Raises:
        DefinitionError: naming the stage, the provider and the providers there are.
    """
    for stage in stages:
        if stage.batch_provider is not None and stage.batch_provider not in names:
            known = ", ".join(sorted(names)) or "none"
            raise DefinitionError(
                f"stage {stage.id!r}: batch provider {stage.batch_provider!r} is not among "
                f"the kernel's batch_providers ({known}): pass it to create_kernel(..., "
                "batch_providers=[...])"
            )


__all__ = [
    "BatchServices",
    "BuildFn",
    "CollectFn",
    "LLMBatch",
    "check_batch_providers",
    "define_llm_batch_stage",
]
