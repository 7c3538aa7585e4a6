"""An event sink that remembers what it was given."""

from __future__ import annotations

from typing import Any, TypeVar, overload

from kernel.events import Event

E = TypeVar("E", bound=Event)


class CollectingEventSink:
    """Collects published events in order, for assertions."""

    def __init__(self, max_retries: int = 3) -> None:
        self.events: list[Event] = []
        self.max_retries = max_retries

    def emit(self, event: Event) -> None:
        self.events.append(event)

    @overload
    def of_type(self, kind: str) -> list[Event]: ...

    @overload
    def of_type(self, kind: type[E]) -> list[E]: ...

    def of_type(self, kind: str | type[Event]) -> list[Any]:
        """The events of one type, by class or by ``type`` string."""
        if isinstance(kind, str):
            return [e for e in self.events if e.type == kind]
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def types(self) -> list[str]:
        """The ``type`` string of each collected event, in order."""
        return [event.type for event in self.events]

    def clear(self) -> None:
        self.events.clear()
