"""Rows to records and back, for the SQLite store.

Columns are named after record fields. A field's type decides its column
form (read by :class:`adapters.columns.Columns`): datetimes become canonical
UTC text (:func:`timestamp`), durations integer microseconds, JSON fields
``json.dumps`` text (written with orjson where the two agree),
booleans 0 or 1, ``Decimal`` money the ``str`` of the Decimal (in TEXT
columns, so the digits stay exact); everything else (strings, numbers, enum
values) is stored as it is. Rows come back as records built field by field,
so a record read equals the record written (datetimes aware UTC, durations,
enum members).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Self, TypeVar, get_type_hints

from attrs import AttrsInstance, field, fields, frozen

from adapters.columns import Columns, _without_none, member_read
from adapters.json_text import json_default, orjson_text
from kernel.errors import StoreError

R = TypeVar("R", bound=AttrsInstance)

_MICROSECOND = timedelta(microseconds=1)


_last_stamp: tuple[datetime | None, str] = (None, "")
"""The last datetime :func:`timestamp` wrote and its text: a transaction stamps many
columns with the same ``now``."""


def timestamp(value: datetime) -> str:
    """The canonical text of an aware datetime: UTC, always with microseconds.

    One fixed-width form makes text order equal time order, so SQL compares
    and indexes these columns directly.

    >>> from datetime import timezone
    >>> timestamp(datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    '2024-01-01T00:00:00.000000+00:00'
    """
    global _last_stamp
    last = _last_stamp
    if value is last[0]:
        return last[1]
    known = _TEXTS.get(value)
    if known is not None:
        return known
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise StoreError(
                f"cannot store naive datetime {value!r}: expected an aware UTC datetime"
            )
        value = value.astimezone(UTC)
    text = value.isoformat(timespec="microseconds")
    _last_stamp = (value, text)
    return text


_TEXTS: dict[datetime, str] = {}
"""Texts of datetimes read lately: a record read, changed and written again keeps
most of its times, which need not be formatted again. Keys are instants (equal
aware datetimes have one canonical text); naive ones never equal them."""

_TEXTS_KEPT = 4096
"""How many read times :data:`_TEXTS` holds before it starts afresh."""


def parse_time(text: str) -> datetime:
    """The aware UTC datetime of a :func:`timestamp` text."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not UTC:
        return parsed.astimezone(UTC)
    if len(text) == _CANONICAL:
        if len(_TEXTS) >= _TEXTS_KEPT:
            _TEXTS.clear()
        _TEXTS[parsed] = text
    return parsed


_CANONICAL = len("2024-01-01T00:00:00.000000+00:00")


# -- JSON columns ------------------------------------------------------------------
#
# Written with orjson where it writes what json would (adapters.json_text). Columns
# are read with the standard library: orjson would read integers beyond 64 bits as
# floats, and telling such texts apart costs what it saves.

_stdlib_dump = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=json_default
).encode


def dump_json(value: Any) -> str:
    """``json.dumps(to_json(value))``, compact: the text of a JSON column.

    >>> dump_json({"n": 1, "cost": Decimal("0.10"), "nan": float("nan")})
    '{"n":1,"cost":"0.10","nan":NaN}'
    """
    if value is None:
        return "null"
    if type(value) is dict and not value:
        return "{}"
    text = orjson_text(value)
    return _stdlib_dump(value) if text is None else text.decode()


_decode = json.JSONDecoder().decode


def load_json(text: str) -> Any:
    """The value of a JSON column; the commonest texts skip the parser."""
    if text == "{}":
        return {}
    if text == "null":
        return None
    return _decode(text)


# -- records -----------------------------------------------------------------------


@frozen
class RecordCodec(Columns[R]):
    """Converts one record class to named-parameter rows and back.

    Built with ``RecordCodec.of(record_class)``, which reads the columns and
    writes the two conversions as one function each (a dict display and a
    constructor call, no loop over the fields: they run on every row).
    """

    bools: tuple[str, ...] = ()
    """The boolean fields (also in ``plain``): SQLite gives them back as 0 or 1."""
    decimals: tuple[str, ...] = ()
    """The ``Decimal`` fields (also in ``plain``): stored as the Decimal's ``str``."""
    _encoder: Callable[[R], dict[str, Any]] = field(init=False, eq=False, repr=False)
    _decoder: Callable[[Mapping[str, Any]], R] = field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        encoder, decoder = _compile(self)
        object.__setattr__(self, "_encoder", encoder)
        object.__setattr__(self, "_decoder", decoder)

    @classmethod
    def of(cls, record_class: type[R]) -> Self:
        """The columns of ``record_class``, and which of them are booleans or decimals."""
        hints = get_type_hints(record_class)
        kinds = {f.name: _without_none(hints[f.name]) for f in fields(record_class)}
        columns = Columns.of(record_class)
        return cls(
            record_class,
            plain=columns.plain,
            times=columns.times,
            durations=columns.durations,
            jsons=columns.jsons,
            enums=columns.enums,
            bools=tuple(name for name, kind in kinds.items() if kind is bool),
            decimals=tuple(name for name, kind in kinds.items() if kind is Decimal),
        )

    def encode(self, record: R) -> dict[str, Any]:
        """The record as ``{column: value}``, ready to bind as named parameters."""
        return self._encoder(record)

    def decode(self, row: Mapping[str, Any]) -> R:
        """The record of a row; internal columns (``position``, ...) are ignored.

        Rows were written by :meth:`encode`, so they are trusted: the record is
        built directly, without a validating structure pass (about three times
        cheaper, and decoding sits on every transaction's path).
        """
        return self._decoder(row)

    def decode_all(self, rows: list[dict[str, Any]]) -> list[R]:
        """Decode several rows, in order."""
        decoder = self._decoder
        return [decoder(row) for row in rows]


def _compile(
    codec: RecordCodec[R],
) -> tuple[Callable[[R], dict[str, Any]], Callable[[Mapping[str, Any]], R]]:
    """The encoder and the decoder of ``codec``'s record class, as Python source run once.

    Field names are identifiers (attrs checked them), so they are safe in the source.
    """
    names: dict[str, Any] = {
        "_record": codec.record_class,
        "_timestamp": timestamp,
        "_parse_time": parse_time,
        "_dump": dump_json,
        "_load": load_json,
        "_Decimal": Decimal,
        "_timedelta": timedelta,
        "_US": _MICROSECOND,
    }
    enums = dict(codec.enums)
    writes, reads = [], []
    for name in (f.name for f in fields(codec.record_class)):
        got, key = f"_r.{name}", repr(name)
        column = f"_row[{key}]"
        if name in codec.times:
            write = f"None if (_v := {got}) is None else _timestamp(_v)"
            read = f"None if (_v := {column}) is None else _parse_time(_v)"
        elif name in codec.durations:
            write = f"None if (_v := {got}) is None else _v // _US"
            read = f"None if (_v := {column}) is None else _timedelta(microseconds=_v)"
        elif name in codec.jsons:
            write, read = f"_dump({got})", f"_load({column})"
        elif name in codec.decimals:
            write = f"None if (_v := {got}) is None else str(_v)"
            read = f"None if (_v := {column}) is None else _Decimal(_v)"
        elif name in codec.bools:
            write, read = got, f"None if (_v := {column}) is None else bool(_v)"
        elif name in enums:
            write, read = got, member_read(name, enums[name], column, names)
        else:
            write, read = got, column
        writes.append(f"        {key}: ({write}),")
        reads.append(f"        {name}=({read}),")
    source = "\n".join(
        [
            "def encode(_r):",
            "    return {",
            *writes,
            "    }",
            "",
            "def decode(_row):",
            "    return _record(",
            *reads,
            "    )",
        ]
    )
    exec(compile(source, f"<codec of {codec.record_class.__name__}>", "exec"), names)
    return names["encode"], names["decode"]


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
