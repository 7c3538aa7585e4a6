"""Adapters: everything that touches the world (stores, clocks, ids, sinks, runner, hosts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.clocks import SystemClock, system_zone
from adapters.ids import UuidIds
from adapters.runner import DefaultStageRunner
from adapters.sinks import LoggingEventSink
from kernel.dispatch import Kernel
from kernel.plugins import Plugin, PluginRunner
from kernel.ports import Clock, EventSink, IdGenerator, Store
from kernel.workflows import Registry, Workflow

__all__ = ["create_kernel"]


def create_kernel(
    *workflows: Workflow[Any, Any],
    store: Store,
    sink: EventSink | None = None,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    plugins: Sequence[Plugin] = (),
) -> Kernel:
    """A kernel wired with the system clock, UUID ids and the default stage runner.

    Events go to ``sink``, else to a ``PluginRunner`` over ``plugins``, else to
    a logging sink.
    """
    if sink is None:
        sink = PluginRunner(list(plugins)) if plugins else LoggingEventSink()
    return Kernel(
        registry=Registry(workflows),
        store=store,
        clock=clock or SystemClock(),
        ids=ids or UuidIds(),
        sink=sink,
        runner=DefaultStageRunner(),
        zone_of=system_zone,
    )
