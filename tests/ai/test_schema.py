"""The JSON Schema ``generate_object`` sends for its output class (SPEC §11)."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Literal

import attrs
import pytest

from kernel.ai.schema import json_schema


class Mood(enum.Enum):
    CALM = "calm"
    ROUGH = "rough"


@attrs.frozen
class Reading:
    at: str
    height_m: float


@attrs.frozen
class Forecast:
    place: str
    kind: Literal["spring", "neap"]
    mood: Mood
    readings: list[Reading]
    tags: tuple[str, ...]
    counts: dict[str, int]
    price: Decimal
    note: str | None = None


def test_every_supported_field_type_has_its_schema() -> None:
    assert json_schema(Forecast) == {
        "type": "object",
        "properties": {
            "place": {"type": "string"},
            "kind": {"enum": ["spring", "neap"]},
            "mood": {"enum": ["calm", "rough"]},
            "readings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"at": {"type": "string"}, "height_m": {"type": "number"}},
                    "required": ["at", "height_m"],
                    "additionalProperties": False,
                },
            },
            "tags": {"type": "array", "items": {"type": "string"}},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "price": {"type": "string", "description": "a decimal number"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["place", "kind", "mood", "readings", "tags", "counts", "price"],
        "additionalProperties": False,
    }


def test_a_type_without_a_schema_is_refused_naming_the_field() -> None:
    @attrs.frozen
    class Odd:
        when: complex

    with pytest.raises(
        TypeError, match=r"Odd\.when: no JSON Schema for the type <class 'complex'>"
    ):
        json_schema(Odd)


def test_only_attrs_classes_have_a_schema() -> None:
    with pytest.raises(TypeError, match="output: expected an attrs class, got <class 'dict'>"):
        json_schema(dict)
