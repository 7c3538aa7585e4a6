"""A JSON Schema for an attrs class: what ``generate_object`` asks a model to fill in.

Deliberately modest (SPEC §11): ``str``, ``int``, ``float``, ``bool``,
``Decimal`` (a string), lists, tuples, ``dict[str, T]``, ``Optional`` and
other unions, ``Literal``, enums and nested attrs classes. The converter
decides in the end: the schema only tells the model what shape to answer in.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import attrs

from kernel.ai.errors import InvalidAICallError
from kernel.records import Json

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_ARRAYS = (list, tuple, set, frozenset, Sequence)


def json_schema(cls: type[Any]) -> dict[str, Json]:
    """The JSON Schema of the attrs class ``cls``.

    Fields without a default are ``required``; no other keys are allowed.

    >>> @attrs.frozen
    ... class Label:
    ...     name: str
    ...     score: float | None = None
    >>> json_schema(Label)["properties"]
    {'name': {'type': 'string'}, 'score': {'anyOf': [{'type': 'number'}, {'type': 'null'}]}}
    >>> json_schema(Label)["required"]
    ['name']

    Raises:
        TypeError: ``cls`` is not an attrs class, or a field's type has no schema here.
    """
    if not attrs.has(cls):
        raise InvalidAICallError(f"output: expected an attrs class, got {cls!r}")
    return _object(cls, cls.__qualname__)


def _object(cls: type[Any], path: str) -> dict[str, Json]:
    hints = get_type_hints(cls)
    properties: dict[str, Json] = {}
    required: list[Json] = []
    for field in attrs.fields(cls):
        name = field.alias or field.name
        properties[name] = _schema(hints.get(field.name, field.type), f"{path}.{field.name}")
        if field.default is attrs.NOTHING:
            required.append(name)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _schema(tp: Any, path: str) -> dict[str, Json]:
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if tp is Decimal:
        return {"type": "string", "description": "a decimal number"}
    if tp is type(None):
        return {"type": "null"}
    if tp is Any:
        return {}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [member.value for member in tp]}
    if isinstance(tp, type) and attrs.has(tp):
        return _object(tp, path)
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return {"enum": list(args)}
    if origin is Union or origin is types.UnionType:
        return {"anyOf": [_schema(arg, path) for arg in args]}
    if origin in _ARRAYS:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            items: list[Json] = [_schema(arg, f"{path}[{n}]") for n, arg in enumerate(args)]
            return {"type": "array", "prefixItems": items, "minItems": len(items)}
        return {"type": "array", "items": _schema(args[0], f"{path}[]") if args else {}}
    if origin in (dict, Mapping) and (not args or args[0] is str):
        values = _schema(args[1], f"{path}{{}}") if args else {}
        return {"type": "object", "additionalProperties": values}
    if tp in (list, tuple):
        return {"type": "array"}
    if tp is dict:
        return {"type": "object"}
    raise InvalidAICallError(
        f"{path}: no JSON Schema for the type {tp!r} (generate_object's output)"
    )


__all__ = ["json_schema"]
