"""Adapters: everything that touches the world (stores, clocks, ids, sinks, runner, hosts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adapters.blobs_store import with_blobs
from adapters.clocks import SystemClock, system_zone
from adapters.ids import UuidIds
from adapters.runner import DefaultStageRunner
from adapters.sinks import LoggingEventSink
from kernel.ai.config import AIConfig
from kernel.dispatch import Kernel
from kernel.plugins import Plugin, PluginRunner
from kernel.ports import BatchProvider, BlobStore, Clock, EventSink, IdGenerator, Store
from kernel.workflows import Registry, Workflow

if TYPE_CHECKING:  # OpenTelemetry is imported only when telemetry is passed
    from adapters.otel import Telemetry

__all__ = ["create_kernel"]


def create_kernel(
    *workflows: Workflow[Any, Any],
    store: Store,
    sink: EventSink | None = None,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    plugins: Sequence[Plugin] = (),
    telemetry: Telemetry | None = None,
    ai: AIConfig | None = None,
    batch_providers: Sequence[BatchProvider] = (),
    blobs: BlobStore | None = None,
    inline_limit: int | None = None,
) -> Kernel:
    """A kernel wired with the system clock, UUID ids and the default stage runner.

    Events go to ``sink``, else to a ``PluginRunner`` over ``plugins``, else to
    a logging sink. With ``telemetry`` (``adapters.otel.Telemetry``, extra
    ``otel``) the kernel traces commands and stage attempts and records stage
    metrics (docs/observability.md). With ``ai`` stage code calls models through
    ``ctx.ai``; ``batch_providers`` serve LLM batch stages (docs/ai.md).

    With ``blobs`` (``adapters.blobs.FileBlobStore(directory)`` or your own
    ``kernel.ports.BlobStore``), run inputs, stage outputs and run outputs whose
    JSON exceeds ``inline_limit`` bytes (default 256 KiB) are kept there and the
    rows hold a reference; ``kernel.store`` is then the wrapping store that loads
    them (pass it to hosts). Without ``blobs`` every value stays in the store.
    See docs/operations.md, "Large payloads".

    Raises:
        ValueError: ``inline_limit`` is not a positive int, or is given without ``blobs``.
    """
    store = with_blobs(store, blobs, inline_limit)
    if sink is None:
        sink = PluginRunner(list(plugins)) if plugins else LoggingEventSink()
    if telemetry is not None:
        from adapters.otel import InstrumentedKernel

        return InstrumentedKernel(
            telemetry=telemetry,
            registry=Registry(workflows),
            store=store,
            clock=clock or SystemClock(),
            ids=ids or UuidIds(),
            sink=sink,
            runner=DefaultStageRunner(),
            zone_of=system_zone,
            ai=ai,
            batch_providers=batch_providers,
        )
    return Kernel(
        registry=Registry(workflows),
        store=store,
        clock=clock or SystemClock(),
        ids=ids or UuidIds(),
        sink=sink,
        runner=DefaultStageRunner(),
        zone_of=system_zone,
        ai=ai,
        batch_providers=batch_providers,
    )
