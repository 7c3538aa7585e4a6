"""Workflow and stage events (SPEC §3.3).

Events are small frozen values, checked when built. They are never emitted
directly: decisions append them to the outbox, and ``outbox.flush`` hands
them to the :class:`~kernel.ports.EventSink`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Optional, get_type_hints

import attrs
from attrs import Attribute, field, frozen

from kernel.convert import to_json
from kernel.records import Json


def _aware(_: object, attribute: Attribute[datetime], value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{attribute.name}: expected an aware UTC datetime, got {value!r}")


@frozen(kw_only=True)
class Event:
    """Fields every event has; ``type`` is the colon string (``"workflow:created"``)."""

    type: ClassVar[str] = ""
    workflow_run_id: str
    timestamp: datetime = field(validator=_aware)

    @property
    def stage_key(self) -> str | None:
        """The stage id of a stage event, else ``None``."""
        value = getattr(self, "stage_id", None)
        return value if isinstance(value, str) else None


@frozen(kw_only=True)
class WorkflowCreated(Event):
    type: ClassVar[str] = "workflow:created"
    workflow_id: str


@frozen(kw_only=True)
class WorkflowStarted(Event):
    type: ClassVar[str] = "workflow:started"


@frozen(kw_only=True)
class WorkflowCompleted(Event):
    type: ClassVar[str] = "workflow:completed"
    duration_ms: int
    total_cost: Decimal = Decimal(0)
    """The run's spend (a decimal string in the outbox payload)."""
    total_tokens: int = 0
    output: Any = None


@frozen(kw_only=True)
class WorkflowFailed(Event):
    type: ClassVar[str] = "workflow:failed"
    error: str


@frozen(kw_only=True)
class WorkflowCancelled(Event):
    type: ClassVar[str] = "workflow:cancelled"
    reason: str | None = None


@frozen(kw_only=True)
class WorkflowSuspended(Event):
    type: ClassVar[str] = "workflow:suspended"
    stage_id: str


@frozen(kw_only=True)
class StageStarted(Event):
    type: ClassVar[str] = "stage:started"
    stage_id: str
    stage_name: str
    stage_number: int


@frozen(kw_only=True)
class StageCompleted(Event):
    type: ClassVar[str] = "stage:completed"
    stage_id: str
    stage_name: str
    duration_ms: int


@frozen(kw_only=True)
class StageSuspended(Event):
    type: ClassVar[str] = "stage:suspended"
    stage_id: str
    stage_name: str
    next_poll_at: datetime | None = None
    """When the stage is looked at next; ``None`` for a signal stage waiting without
    a timeout."""
    signal: str | None = None
    """The signal a signal stage waits for (SPEC §13)."""


@frozen(kw_only=True)
class StageSignalled(Event):
    """A signal stage consumed the signal ``signal`` (written before its
    ``stage:completed``)."""

    type: ClassVar[str] = "stage:signalled"
    stage_id: str
    signal: str


@frozen(kw_only=True)
class StageFailed(Event):
    type: ClassVar[str] = "stage:failed"
    stage_id: str
    stage_name: str
    error: str
    attempt: int
    will_retry: bool
    traceback: str | None = None
    """The formatted traceback of what the attempt raised, if it raised."""


def _unit_interval(_: object, attribute: Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name}: expected a number from 0 to 1, got {value!r}")


@frozen(kw_only=True)
class StageProgress(Event):
    type: ClassVar[str] = "stage:progress"
    stage_id: str
    progress: float = field(validator=_unit_interval)
    message: str
    details: dict[str, Any] | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        WorkflowCreated,
        WorkflowStarted,
        WorkflowCompleted,
        WorkflowFailed,
        WorkflowCancelled,
        WorkflowSuspended,
        StageStarted,
        StageCompleted,
        StageSuspended,
        StageSignalled,
        StageFailed,
        StageProgress,
    )
}
"""Every event class by its ``type`` string."""


def _time_fields(cls: type[Event]) -> tuple[str, ...]:
    hints = get_type_hints(cls)
    return tuple(
        name
        for name in attrs.fields_dict(cls)
        if hints[name] in (datetime, datetime | None, Optional[datetime])  # noqa: UP045
    )


_TIME_FIELDS: dict[str, tuple[str, ...]] = {
    event_type: _time_fields(cls) for event_type, cls in EVENT_TYPES.items()
}

_DECIMAL_FIELDS: dict[str, tuple[str, ...]] = {
    event_type: tuple(
        name for name, hint in get_type_hints(cls).items() if hint is Decimal and name != "type"
    )
    for event_type, cls in EVENT_TYPES.items()
}
"""Money fields, written as decimal strings (``WorkflowCompleted.total_cost``)."""


def _decimal(value: Any) -> Any:
    """A payload's money back as a ``Decimal`` (a float from an older payload by its
    shortest repr); anything else is left for the event's own checks."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str | int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def event_payload(event: Event) -> dict[str, Json]:
    """The outbox payload of ``event``: its ``type`` first, then its fields in JSON form.

    Every store writes this payload, and :func:`event_from_payload` reads it
    back. Datetimes become ISO 8601 text (``datetime.isoformat``), and
    ``output`` and ``details`` are detached from the caller's objects.

    >>> from datetime import UTC
    >>> event = StageStarted(workflow_run_id="r1", timestamp=datetime(2025, 1, 1, tzinfo=UTC),
    ...                      stage_id="s1", stage_name="fetch", stage_number=1)
    >>> event_payload(event)  # doctest: +NORMALIZE_WHITESPACE
    {'type': 'stage:started', 'workflow_run_id': 'r1', 'timestamp': '2025-01-01T00:00:00+00:00',
     'stage_id': 's1', 'stage_name': 'fetch', 'stage_number': 1}
    >>> event_from_payload(event_payload(event)) == event
    True
    """
    return {"type": event.type, **to_json(event)}


def event_from_payload(payload: dict[str, Any]) -> Event:
    """Rebuild an event from its outbox payload (its fields in JSON form plus ``type``).

    Payloads are written by the kernel, so the event is built directly: only
    its datetimes and decimals need parsing.

    >>> e = event_from_payload({"type": "workflow:started", "workflow_run_id": "r1",
    ...                         "timestamp": "2025-01-01T00:00:00+00:00"})
    >>> e.type, e.workflow_run_id
    ('workflow:started', 'r1')
    """
    event_type = payload["type"]
    fields = {key: value for key, value in payload.items() if key != "type"}
    for name in _TIME_FIELDS[event_type]:
        value = fields.get(name)
        if isinstance(value, str):
            fields[name] = datetime.fromisoformat(value)
    for name in _DECIMAL_FIELDS[event_type]:
        if name in fields:
            fields[name] = _decimal(fields[name])
    return EVENT_TYPES[event_type](**fields)
