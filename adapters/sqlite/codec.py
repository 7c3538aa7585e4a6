"""Rows to records and back, for the SQLite store.

Columns are named after record fields. A field's type decides its column
form (read by :class:`adapters.columns.Columns`): datetimes become canonical
UTC text (:func:`timestamp`), durations integer microseconds, JSON fields
``json.dumps`` text, booleans 0 or 1, ``Decimal`` money the ``str`` of the
Decimal (in TEXT columns, so the digits stay exact); everything else (strings,
numbers, enum values) is stored as it is. Rows come back as records built field by field, so a
record read equals the record written (datetimes aware UTC, durations, enum
members).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Self, TypeVar, get_type_hints

from attrs import AttrsInstance, evolve, fields, frozen

from adapters.columns import Columns, _without_none
from kernel.convert import to_json
from kernel.errors import StoreError

R = TypeVar("R", bound=AttrsInstance)

_MICROSECOND = timedelta(microseconds=1)


def timestamp(value: datetime) -> str:
    """The canonical text of an aware datetime: UTC, always with microseconds.

    One fixed-width form makes text order equal time order, so SQL compares
    and indexes these columns directly.

    >>> from datetime import timezone
    >>> timestamp(datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    '2024-01-01T00:00:00.000000+00:00'
    """
    if value.tzinfo is None:
        raise StoreError(f"cannot store naive datetime {value!r}: expected an aware UTC datetime")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    """The aware UTC datetime of a :func:`timestamp` text."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def _json_default(value: Any) -> Any:
    # Anything json cannot write natively goes through the kernel's converter,
    # exactly as json.dumps(to_json(value)) would, without walking plain JSON twice.
    converted = to_json(value)
    if type(converted) is type(value):
        raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
    return converted


dump_json = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_json_default
).encode
"""``json.dumps(to_json(value))``, compact: the text of a JSON column."""

_decode = json.JSONDecoder().decode


def load_json(text: str) -> Any:
    """The value of a JSON column; the commonest texts skip the parser."""
    if text == "{}":
        return {}
    if text == "null":
        return None
    return _decode(text)


@frozen
class RecordCodec(Columns[R]):
    """Converts one record class to named-parameter rows and back.

    Built with ``RecordCodec.of(record_class)``, which reads the columns.
    """

    bools: tuple[str, ...] = ()
    """The boolean fields (also in ``plain``): SQLite gives them back as 0 or 1."""
    decimals: tuple[str, ...] = ()
    """The ``Decimal`` fields (also in ``plain``): stored as the Decimal's ``str``."""

    @classmethod
    def of(cls, record_class: type[R]) -> Self:
        """The columns of ``record_class``, and which of them are booleans or decimals."""
        hints = get_type_hints(record_class)
        kinds = {f.name: _without_none(hints[f.name]) for f in fields(record_class)}
        return evolve(
            super().of(record_class),
            bools=tuple(name for name, kind in kinds.items() if kind is bool),
            decimals=tuple(name for name, kind in kinds.items() if kind is Decimal),
        )

    def encode(self, record: R) -> dict[str, Any]:
        """The record as ``{column: value}``, ready to bind as named parameters."""
        row = {name: getattr(record, name) for name in self.plain}
        for name in self.times:
            value = getattr(record, name)
            row[name] = None if value is None else timestamp(value)
        for name in self.durations:
            value = getattr(record, name)
            row[name] = None if value is None else value // _MICROSECOND
        for name in self.jsons:
            row[name] = dump_json(getattr(record, name))
        for name in self.decimals:
            value = getattr(record, name)
            row[name] = None if value is None else str(value)
        return row

    def decode(self, row: Mapping[str, Any]) -> R:
        """The record of a row; internal columns (``position``, ...) are ignored.

        Rows were written by :meth:`encode`, so they are trusted: the record is
        built directly, without a validating structure pass (about three times
        cheaper, and decoding sits on every transaction's path).
        """
        data = {name: row[name] for name in self.plain}
        for name, enum_class in self.enums:
            data[name] = enum_class(data[name])
        for name in self.bools:
            value = data[name]
            data[name] = None if value is None else bool(value)
        for name in self.times:
            text = row[name]
            data[name] = None if text is None else parse_time(text)
        for name in self.durations:
            value = row[name]
            data[name] = None if value is None else timedelta(microseconds=value)
        for name in self.jsons:
            data[name] = load_json(row[name])
        for name in self.decimals:
            text = data[name]
            data[name] = None if text is None else Decimal(text)
        return self.record_class(**data)

    def decode_all(self, rows: list[dict[str, Any]]) -> list[R]:
        """Decode several rows, in order."""
        return [self.decode(row) for row in rows]


def fetch_dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """All remaining rows of ``cursor`` as ``{column: value}`` dicts.

    Fetching everything at once also finishes ``... RETURNING`` statements,
    which SQLite requires before the transaction can commit.
    """
    rows = cursor.fetchall()
    if not rows:
        return []
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in rows]
