"""Records to query parameters and rows back to records.

Records never see a row: parameters are the record's fields with enums as
their values and JSON fields wrapped for ``jsonb`` (both read off the record
class by :class:`adapters.columns.Columns`, by an encoder compiled once per
record class); rows come back as dicts holding the record's fields. Runs,
stages and jobs, read by every transaction, are built by decoders compiled the
same way (times to UTC, enum values to members); the other records go through
the one cattrs converter. Timestamps are ``timestamptz`` (aware UTC on the way
out), durations ``interval``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from math import isfinite
from typing import Any, TypeVar, cast

import attrs
import orjson
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.types.json import Jsonb

from adapters.columns import Columns, member_read, usage_columns, usage_entry
from adapters.json_text import json_default, orjson_text
from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.convert import converter, to_json
from kernel.events import Event, event_payload
from kernel.records import (
    IdempotencyRecord,
    Job,
    LogEntry,
    OutboxEvent,
    SignalRecord,
    WorkflowRun,
    WorkflowStage,
)
from kernel.schedules import ScheduleRecord

Row = dict[str, Any]
R = TypeVar("R")

_COLUMNS: dict[type[Any], Columns[Any]] = {
    cls: Columns.of(cls)
    for cls in (
        WorkflowRun,
        WorkflowStage,
        Job,
        OutboxEvent,
        IdempotencyRecord,
        LogEntry,
        SignalRecord,
        ScheduleRecord,
        BatchCancel,
    )
}


def params(record: Any, **extra: Any) -> Row:
    """Query parameters for ``record``: its fields (JSON ones wrapped by :func:`jsonb`,
    enums as their values), plus ``extra`` ones."""
    values = _ENCODERS[type(record)](record)
    if extra:
        values.update(extra)
    return values


def jsonb(value: Any) -> Jsonb:
    """A JSON value for a ``jsonb`` column, written as ``json.dumps(to_json(value))``
    would write it (:func:`json_text`) when the statement is sent.

    >>> jsonb({}).obj, jsonb(None).obj
    ({}, None)
    >>> from datetime import UTC
    >>> json_text(jsonb({"at": datetime(2026, 1, 2, tzinfo=UTC)}).obj)
    b'{"at":"2026-01-02T00:00:00+00:00"}'
    """
    if value is None:
        return Jsonb(None)
    if type(value) is dict and not value:
        return Jsonb({})  # the commonest value: the default dumps writes it at once
    return Jsonb(value, dumps=json_text)


def json_text(value: Any) -> bytes:
    """The text of a JSON column's value: ``json.dumps(to_json(value))``, compact, with
    orjson where it writes the same (:mod:`adapters.json_text`)."""
    if value is None:
        return b"null"
    if type(value) is dict and not value:
        return b"{}"
    text = orjson_text(value)
    return _jsonb_dump(value).encode() if text is None else text


_jsonb_dump = json.JSONEncoder(separators=(",", ":"), default=json_default).encode
"""The standard library's text, where orjson's would differ (NaN, which the server
refuses, as it refused it when ``json`` wrote every value)."""


def _row_encoder(cls: type[Any]) -> Callable[[Any], Row]:
    """A function that gives the parameters of a ``cls`` record, as Python source run
    once (``attrs.asdict`` and a loop over the JSON and enum fields cost about three
    times as much, on every row written). Field names are identifiers (attrs checked
    them), so they are safe in the source."""
    columns = _COLUMNS[cls]
    enums = {name for name, _ in columns.enums}
    items = []
    for name in (field.name for field in attrs.fields(cls)):
        got = f"_r.{name}"
        if name in columns.jsons:
            value = f"_jsonb({got})"
        elif name in enums:
            value = f"None if (_v := {got}) is None else _v.value"
        else:
            value = got
        items.append(f"        {name!r}: {value},")
    source = "\n".join(["def encode(_r):", "    return {", *items, "    }"])
    names: dict[str, Any] = {"_jsonb": jsonb}
    exec(compile(source, f"<row encoder of {cls.__name__}>", "exec"), names)
    encode: Callable[[Any], Row] = names["encode"]
    return encode


_ENCODERS: dict[type[Any], Callable[[Any], Row]] = {cls: _row_encoder(cls) for cls in _COLUMNS}


def _interval(value: timedelta) -> str:
    # Explicit signs: read alike in every IntervalStyle.
    return "%+d day %+d second %+d microsecond" % (  # noqa: UP031
        value.days,
        value.seconds,
        value.microseconds,
    )


_COLUMN_TEXT: dict[type[Any], Callable[[Any], Any]] = {
    Jsonb: lambda value: to_json(value.obj),
    datetime: datetime.isoformat,
    timedelta: _interval,
    Decimal: str,
}
"""How :func:`rows_json` writes the column values JSON has no form for, by exact type."""


def _row_json_default(value: Any) -> Any:
    write = _COLUMN_TEXT.get(type(value))
    if write is None:
        for kind, writer in _COLUMN_TEXT.items():  # a subclass (rare): its base's form
            if isinstance(value, kind):
                return writer(value)
        raise TypeError(f"{type(value).__name__} is not a column value")
    return write(value)


_rows_encoder = json.JSONEncoder(separators=(",", ":"), default=_row_json_default)


# The rows' text: orjson writes it about twice as fast as the standard library
# (3.3 µs a row of a group's finish against 7.0, the check for floats included,
# measured on the rows `bench/cpu_execute.py --postgres ... --group 16` writes),
# datetimes through `isoformat`, and each JSON column's value as `json_text` writes
# it. Where orjson refuses a row (an integer beyond 64 bits, a lone surrogate), or a
# column holds a float that is NaN or infinite (records have no float fields: only a
# malformed one would), the standard library writes the whole text, as before.


_ROWS_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME
"""Datetimes as ``isoformat`` writes them: orjson rounds an offset with seconds in it
(``+00:19:32``, a zone's local mean time) to minutes, which is another instant."""


def _row_orjson_default(value: Any) -> Any:
    kind = type(value)
    if kind is datetime:
        return value.isoformat()
    if kind is Jsonb:
        return orjson.Fragment(json_text(value.obj))
    return _row_json_default(value)


def _non_finite(rows: list[Row]) -> bool:
    """Whether a column of ``rows`` holds a float that is NaN or infinite."""
    return any(
        float in map(type, row.values())  # the common case, a row without floats, at C speed
        and not all(isfinite(value) for value in row.values() if type(value) is float)
        for row in rows
    )


def rows_json(rows: list[Row]) -> str:
    """Rows of :func:`params` as one JSON array, for the multi-row statements of
    ``batched.sql``: times as ISO 8601 text, durations as interval text, numerics as
    text, a JSON column's value as itself. One text costs the client far less to send
    than an array per column (psycopg dumps and escapes those element by element).
    A value JSON cannot hold (NaN) is written as ``json`` writes it, and the server
    refuses it, as it refuses it in a single row's ``jsonb`` parameter.

    >>> from datetime import UTC
    >>> rows_json([{"id": "a", "at": datetime(2026, 1, 2, tzinfo=UTC), "n": Jsonb(None)}])
    '[{"id":"a","at":"2026-01-02T00:00:00+00:00","n":null}]'
    >>> rows_json([{"id": "a", "n": Jsonb({"x": float("nan")})}])
    '[{"id":"a","n":{"x":NaN}}]'
    """
    try:
        text = orjson.dumps(rows, default=_row_orjson_default, option=_ROWS_OPTIONS)
    except orjson.JSONEncodeError:
        return _rows_encoder.encode(rows)
    if _non_finite(rows):
        return _rows_encoder.encode(rows)
    return text.decode()


def event_params(event: Event, event_id: str, causation_id: str) -> Row:
    """Parameters of ``append_outbox``: the payload is :func:`~kernel.events.event_payload`."""
    return {
        "id": event_id,
        "workflow_run_id": event.workflow_run_id,
        "event_type": event.type,
        "payload": jsonb(event_payload(event)),
        "causation_id": causation_id,
        "occurred_at": event.timestamp,
    }


def usage_params(entry: UsageEntry) -> Row:
    """Parameters of ``insert_usage``: the entry's fields, its ``Usage`` as four token columns."""
    return usage_columns(entry)


def usage_entries(rows: list[Row]) -> list[UsageEntry]:
    """Ledger entries of ``usage`` rows, keeping their order (``cost`` is numeric: a Decimal)."""
    return [usage_entry(row) for row in rows]


def _row_decoder(cls: type[R]) -> Callable[[Row], R]:
    """A function that builds a ``cls`` record from its row, as Python source run once.

    Rows of the store's tables come back typed by psycopg (aware datetimes,
    ``timedelta``, ``Decimal``, parsed JSON), and the store wrote them from records:
    only times (to UTC, as the converter gives them) and enum values need converting,
    which the validating structure pass did at about three times the cost. Columns
    beyond the record's fields are ignored. Field names are identifiers (attrs
    checked them), so they are safe in the source.
    """
    columns = _COLUMNS[cls]
    enums = dict(columns.enums)
    names: dict[str, Any] = {"_record": cls, "_UTC": UTC}
    reads = []
    for name in (field.name for field in attrs.fields(cast(Any, cls))):
        column = f"_row[{name!r}]"
        if name in columns.times:
            read = f"None if (_v := {column}) is None else _v.astimezone(_UTC)"
        elif name in enums:
            read = member_read(name, enums[name], column, names)
        else:
            read = column
        reads.append(f"        {name}=({read}),")
    source = "\n".join(["def decode(_row):", "    return _record(", *reads, "    )"])
    exec(compile(source, f"<row decoder of {cls.__name__}>", "exec"), names)
    decode: Callable[[Row], R] = names["decode"]
    return decode


_DECODERS: dict[type[Any], Callable[[Row], Any]] = {
    cls: _row_decoder(cls) for cls in (WorkflowRun, WorkflowStage, Job)
}
"""Row decoders of the records every transaction reads; the others go through the
converter."""


def record(row: Row, cls: type[R]) -> R:
    """Structure one row into a record."""
    decode = _DECODERS.get(cls)
    return decode(row) if decode is not None else converter.structure(row, cls)


def records(rows: list[Row], cls: type[R]) -> list[R]:
    """Structure rows into records, keeping their order."""
    decode = _DECODERS.get(cls)
    if decode is not None:
        return [decode(row) for row in rows]
    structure = converter.structure
    return [structure(row, cls) for row in rows]


_decode = json.JSONDecoder().decode


class JsonbLoader(Loader):
    """Reads a ``jsonb`` column (text format) as psycopg's own loader does, with less
    around the parser: the empty object and ``null`` (most JSON columns of a row) skip
    it, and the rest goes straight to a decoder made once (``json.loads`` on bytes
    first guesses their encoding; the server sends UTF-8). A row of a group lease has
    about six such columns.

    >>> loader = JsonbLoader(0)
    >>> loader.load(b"{}"), loader.load(b"null"), loader.load(b'{"n": 12345678901234567890123}')
    ({}, None, {'n': 12345678901234567890123})
    """

    def load(self, data: Buffer) -> Any:
        if data == b"{}":
            return {}
        if data == b"null":
            return None
        return _decode(bytes(data).decode())
