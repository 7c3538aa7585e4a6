"""JSON texts of column values, written with orjson where it writes what ``json`` would.

Both stores write a JSON column as ``json.dumps(to_json(value))`` would (the kernel's
converter turns records, datetimes and decimals into JSON form). orjson writes such
texts about ten times faster than the standard library. Where the two would write
different values the standard library writes, so what a column holds is what it
always held: orjson writes NaN and infinities as null (a text with null in it is
written again by the standard library, which keeps NaN; PostgreSQL then refuses it),
and refuses integers beyond 64 bits, keys that are not strings and lone surrogates
(on any refusal the standard library takes over). The one value orjson writes that
the standard library refused is a ``uuid.UUID``: as its string.
"""

from __future__ import annotations

from typing import Any

import orjson

from kernel.convert import to_json

_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
"""Datetimes and dataclasses go through the kernel's converter, as with ``json``."""


def json_default(value: Any) -> Any:
    """The ``default`` of a JSON encoder: what ``json`` cannot write natively goes
    through the kernel's converter, exactly as ``json.dumps(to_json(value))`` would,
    without walking plain JSON twice."""
    converted = to_json(value)
    if type(converted) is type(value):
        raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
    return converted


def orjson_text(value: Any) -> bytes | None:
    """orjson's compact text of ``value`` (the JSON form of ``to_json(value)``), or
    ``None`` where the standard library must write it.

    >>> orjson_text({"n": 1, "at": [1.5]}), orjson_text({"n": float("nan")})
    (b'{"n":1,"at":[1.5]}', None)
    """
    try:
        text = orjson.dumps(value, default=json_default, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return None
    if b"null" in text:
        return None  # a null may have been a NaN
    return text
