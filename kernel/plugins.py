"""Plugins: event handlers behind the outbox (SPEC §7).

A :class:`PluginRunner` is an :class:`~kernel.ports.EventSink`: ``outbox.flush``
hands it each event, and it calls every handler registered for the event's
type. If a handler raises, the delivery failed: the outbox retries the event
(calling every handler for it again, so handlers should be idempotent) and
dead-letters it after ``max_retries`` failures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from attrs import field, frozen

from kernel.errors import DefinitionError
from kernel.events import EVENT_TYPES, Event

Handler = Callable[[Event], object]


@frozen
class Plugin:
    """A named set of handlers by event type (``"workflow:completed"``)."""

    name: str
    handlers: Mapping[str, Handler] = field(factory=dict)


def define_plugin(name: str, handlers: Mapping[str, Handler]) -> Plugin:
    """Define a plugin; unknown event types are refused with the known ones listed.

    >>> seen = []
    >>> audit = define_plugin("audit", {"workflow:completed": seen.append})
    >>> sorted(audit.handlers)
    ['workflow:completed']
    """
    for event_type, handler in handlers.items():
        if event_type not in EVENT_TYPES:
            known = ", ".join(sorted(EVENT_TYPES))
            raise DefinitionError(
                f"plugin {name!r}: unknown event type {event_type!r} (known: {known})"
            )
        if not callable(handler):
            raise DefinitionError(f"plugin {name!r}: handler for {event_type!r} is not callable")
    return Plugin(name=name, handlers=dict(handlers))


class PluginRunner:
    """An event sink that routes each event to the plugins' handlers for its type."""

    def __init__(self, plugins: list[Plugin] | tuple[Plugin, ...], max_retries: int = 3) -> None:
        if max_retries < 1:
            raise ValueError(f"max_retries: expected an int >= 1, got {max_retries!r}")
        self.plugins = tuple(plugins)
        self.max_retries = max_retries

    def emit(self, event: Event) -> None:
        """Call each matching handler; the first failure fails the delivery."""
        for plugin in self.plugins:
            handler = plugin.handlers.get(event.type)
            if handler is not None:
                handler(event)
