"""Records to query parameters and rows back to records.

Records never see a row: parameters are the record's fields with enums as
their values and JSON fields wrapped for ``jsonb``; rows come back as dicts
whose keys are exactly the record's fields and go through the one cattrs
converter. Timestamps are ``timestamptz`` (aware UTC on the way out),
durations ``interval``.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

import attrs
from psycopg.types.json import Jsonb

from kernel.convert import converter, to_json
from kernel.events import Event
from kernel.records import (
    IdempotencyRecord,
    Job,
    LogEntry,
    OutboxEvent,
    WorkflowRun,
    WorkflowStage,
)
from kernel.status import JobStatus, LogLevel, Status

Row = dict[str, Any]
R = TypeVar("R")
E = TypeVar("E", bound=enum.Enum)

record_converter = converter.copy()
"""The kernel converter, plus hooks that structure the record enums as members.

The kernel's strict ``str`` hook also matches ``StrEnum`` classes (cattrs
dispatches on bases too) and would return a bare ``str``; a hook on the enum
class itself is more specific and wins. Drop once ``kernel.convert`` does it.
"""


def _structure_enum(value: Any, enum_class: type[E]) -> E:
    return enum_class(value)


for _enum in (Status, JobStatus, LogLevel):
    record_converter.register_structure_hook(_enum, _structure_enum)

_JSON_FIELDS: dict[type[Any], tuple[str, ...]] = {
    WorkflowRun: ("input", "config", "metadata", "output"),
    WorkflowStage: ("config", "suspended_state", "metrics"),
    Job: ("payload",),
    OutboxEvent: ("payload",),
    IdempotencyRecord: ("result",),
    LogEntry: ("metadata",),
}


def params(record: Any, **extra: Any) -> Row:
    """Query parameters for ``record``: its fields, plus ``extra`` ones."""
    values = attrs.asdict(record, recurse=False)
    for name in _JSON_FIELDS[type(record)]:
        values[name] = jsonb(values[name])
    for name, value in values.items():
        if isinstance(value, enum.Enum):
            values[name] = value.value
    values.update(extra)
    return values


def jsonb(value: Any) -> Jsonb:
    """A JSON value (in JSON form, detached from the caller's objects) for a ``jsonb`` column."""
    return Jsonb(to_json(value))


def event_params(event: Event, event_id: str, causation_id: str) -> Row:
    """Parameters of ``append_outbox``: the payload is the event's type and JSON fields."""
    payload: dict[str, Any] = {"type": event.type, **to_json(event)}
    return {
        "id": event_id,
        "workflow_run_id": event.workflow_run_id,
        "event_type": event.type,
        "payload": Jsonb(payload),
        "causation_id": causation_id,
        "occurred_at": event.timestamp,
    }


def record(row: Row, cls: type[R]) -> R:
    """Structure one row into a record."""
    return record_converter.structure(row, cls)


def records(rows: list[Row], cls: type[R]) -> list[R]:
    """Structure rows into records, keeping their order."""
    structure = record_converter.structure
    return [structure(row, cls) for row in rows]
