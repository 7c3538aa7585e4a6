"""JSON values of every kind a column may be given, for the codec tests of both stores:
what orjson writes as the standard library does, and what it writes otherwise."""

from __future__ import annotations

import dataclasses
import enum
import math
from datetime import UTC, datetime
from decimal import Decimal

import attrs

from kernel.status import Status

T0 = datetime(2025, 3, 4, 5, 6, 7, 8, tzinfo=UTC)


@attrs.frozen
class Point:
    x: int
    y: float


@dataclasses.dataclass
class Box:
    name: str
    at: datetime


class Colour(enum.Enum):
    RED = "red"


VALUES = {
    "empty dict": {},
    "null": None,
    "scalars": {"s": 'é ☃ \n "q"', "i": -3, "f": 0.1, "t": True, "n": None, "big float": 1e16},
    "nested": {"a": [1, [2, {"b": []}], {}], "c": {"d": {"e": "f"}}},
    "tuple": (1, "two", 3.0),
    "decimal": {"cost": Decimal("0.10"), "total": Decimal("12.000000001")},
    "datetime": {"at": T0, "naive": datetime(2025, 1, 1)},
    "attrs and dataclass": {"point": Point(1, 2.5), "box": Box("b", T0)},
    "enums": {"status": Status.RUNNING, "colour": Colour.RED},
    "nan and infinities": {"nan": math.nan, "inf": [math.inf, -math.inf]},
    "text that says null": {"null": "null", "nullable": True},
    "integers beyond 64 bits": [2**64, -(2**63) - 1, 10**30],
    "keys that are not strings": {7: "seven", 2.5: "two and a half", False: "no", None: "none"},
}
