"""How each field of a record is stored as a column, read off the record class.

Both SQL stores write a record as one row whose columns are named after its
fields, and a field's annotation says what its column needs: datetimes and
durations have their own column forms, JSON fields (``Any``, dicts, lists)
are written as JSON, enums as their values and read back as members. The
SQLite codec converts every kind itself; PostgreSQL's driver handles times
and durations, so its store only wraps JSON fields and unwraps enums.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import UnionType
from typing import Any, Generic, Self, TypeVar, Union, get_args, get_origin, get_type_hints

from attrs import AttrsInstance, fields, frozen

from kernel.ai.ledger import UsageEntry
from kernel.ai.types import Usage

R = TypeVar("R", bound=AttrsInstance)


def _without_none(annotation: Any) -> Any:
    """``X`` for ``X | None``; anything else unchanged."""
    if get_origin(annotation) in (Union, UnionType):
        present = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(present) == 1:
            return present[0]
    return annotation


def _column_kind(annotation: Any) -> str:
    if annotation is datetime:
        return "time"
    if annotation is timedelta:
        return "duration"
    if annotation is Any or annotation in (dict, list) or get_origin(annotation) in (dict, list):
        return "json"
    return "plain"


@frozen
class Columns(Generic[R]):
    """The field names of ``record_class`` grouped by how their columns are stored.

    >>> from kernel.records import Job
    >>> columns = Columns.of(Job)
    >>> columns.jsons, columns.enums
    (('payload',), (('status', <enum 'JobStatus'>),))
    """

    record_class: type[R]
    plain: tuple[str, ...]
    """Stored as they are: strings, numbers, booleans, enum values."""
    times: tuple[str, ...]
    durations: tuple[str, ...]
    jsons: tuple[str, ...]
    enums: tuple[tuple[str, type[enum.Enum]], ...] = ()
    """The enum fields (also in ``plain``) and their classes."""

    @classmethod
    def of(cls, record_class: type[R]) -> Self:
        """Read the column kinds off ``record_class``'s attrs fields and annotations.

        A subclass gets an instance of itself, so codecs built on these columns
        share this reading.
        """
        hints = get_type_hints(record_class)
        kinds: dict[str, list[str]] = {"plain": [], "time": [], "duration": [], "json": []}
        enums: list[tuple[str, type[enum.Enum]]] = []
        for field in fields(record_class):
            annotation = _without_none(hints[field.name])
            kinds[_column_kind(annotation)].append(field.name)
            if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
                enums.append((field.name, annotation))
        return cls(
            record_class,
            plain=tuple(kinds["plain"]),
            times=tuple(kinds["time"]),
            durations=tuple(kinds["duration"]),
            jsons=tuple(kinds["json"]),
            enums=tuple(enums),
        )


def member_read(name: str, kind: type[enum.Enum], column: str, names: dict[str, Any]) -> str:
    """Python source, for a compiled row decoder, that reads field ``name``'s member of
    ``kind`` from the expression ``column``: by value from a dict (an enum call costs a
    few dict lookups more); ``None`` stays ``None``, and a value that is no member
    raises as ``kind(value)`` does. What the source uses goes into ``names``.

    >>> from kernel.status import Status
    >>> names: dict[str, Any] = {}
    >>> read = eval(f"lambda _row: {member_read('status', Status, '_row', names)}", names)
    >>> read("RUNNING"), read(None)
    (<Status.RUNNING: 'RUNNING'>, None)
    """
    names[f"_enum_{name}"] = kind
    names[f"_members_{name}"] = {member.value: member for member in kind}
    return (
        f"_m if (_m := _members_{name}.get(_v := {column})) is not None "
        f"else None if _v is None else _enum_{name}(_v)"
    )


USAGE_COLUMNS = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")
"""The token columns a ledger row flattens its ``Usage`` into, in ``Usage``'s order."""


def usage_columns(entry: UsageEntry) -> dict[str, Any]:
    """A ledger entry as the columns of a ``usage`` row, values as the record holds
    them (each store then writes ``cost`` and ``recorded_at`` its own way)."""
    usage = entry.usage
    return {
        "call_id": entry.call_id,
        "workflow_run_id": entry.workflow_run_id,
        "stage_id": entry.stage_id,
        "attempt": entry.attempt,
        "model": entry.model,
        "kind": entry.kind,
        **{name: getattr(usage, name) for name in USAGE_COLUMNS},
        "cost": entry.cost,
        "priced": entry.priced,
        "note": entry.note,
        "recorded_at": entry.recorded_at,
    }


def usage_entry(row: Mapping[str, Any], **read: Any) -> UsageEntry:
    """The ledger entry of a ``usage`` row; ``read`` replaces the columns a store must
    convert itself (SQLite's text ``cost`` and ``recorded_at``, say)."""
    values = {**row, **read}
    return UsageEntry(
        call_id=values["call_id"],
        workflow_run_id=values["workflow_run_id"],
        stage_id=values["stage_id"],
        attempt=values["attempt"],
        model=values["model"],
        kind=values["kind"],
        usage=Usage(*(values[name] for name in USAGE_COLUMNS)),
        cost=values["cost"],
        priced=values["priced"],
        recorded_at=values["recorded_at"],
        note=values["note"],
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(value: datetime) -> int:
    """``value`` in whole microseconds since the epoch: how both SQL stores keep the
    lease times of limit keys (SPEC §15), so a rate window compares exact integers.

    >>> epoch_us(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC))
    1000005
    """
    return (value - _EPOCH) // timedelta(microseconds=1)
