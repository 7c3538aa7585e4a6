"""The one cattrs converter: validation of inputs and JSON form of records.

Primitives are structured strictly (``"5"`` is not an int, ``1`` is not a
bool), unknown keys are refused, and every failure is reported as a list
of ``path: problem`` lines such as ``input.pages: expected int, got 'ten'``.
"""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import cattrs
from cattrs.errors import ForbiddenExtraKeysError
from cattrs.v import transform_error
from returns.result import Failure, Result, Success

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True)
"""Structures user data into attrs classes and records into JSON form."""


def _strict(kind: type[Any], accepted: tuple[type[Any], ...]) -> Any:
    def hook(value: Any, _: type[Any]) -> Any:
        # bool is an int subclass: refuse it explicitly where it is not wanted.
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {kind.__name__}, got {value!r}")
        if not isinstance(value, accepted):
            raise TypeError(f"expected {kind.__name__}, got {value!r}")
        return kind(value)

    return hook


def _structure_enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in cls)
        raise ValueError(f"expected one of {allowed}, got {value!r}") from None


converter.register_structure_hook(int, _strict(int, (int,)))
converter.register_structure_hook(float, _strict(float, (int, float)))
converter.register_structure_hook(str, _strict(str, (str,)))
converter.register_structure_hook(bool, _strict(bool, (bool,)))
# Hooks above dispatch along the MRO, where StrEnum and IntEnum come before
# str and int: give enums their own hooks so they come back as members.
for _enum_base in (enum.Enum, enum.StrEnum, enum.IntEnum):
    converter.register_structure_hook(_enum_base, _structure_enum)


def _structure_datetime(value: Any, _: type[Any]) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected an ISO 8601 datetime, got {value!r}") from None
    else:
        raise TypeError(f"expected an ISO 8601 datetime, got {value!r}")
    if parsed.tzinfo is None:
        raise ValueError(f"expected an aware datetime, got {value!r}")
    return parsed.astimezone(UTC)


def _structure_timedelta(value: Any, _: type[Any]) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a duration in seconds, got {value!r}")
    return timedelta(seconds=value)


converter.register_structure_hook(datetime, _structure_datetime)
converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
converter.register_structure_hook(timedelta, _structure_timedelta)
converter.register_unstructure_hook(timedelta, lambda value: value.total_seconds())


def _format_problem(exc: BaseException, _: type[Any] | None) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        names = ", ".join(repr(name) for name in sorted(exc.extra_fields))
        return f"unknown field {names}"
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, AttributeError) and exc.name == "keys":
        # cattrs reads the keys of what should be a mapping: name the value instead.
        return f"expected a mapping, got {exc.obj!r}"
    return str(exc) or type(exc).__name__


def describe_errors(exc: Exception, root: str) -> list[str]:
    """Turn a cattrs structuring error into ``path: problem`` lines.

    >>> import attrs
    >>> @attrs.frozen
    ... class Doc:
    ...     pages: int
    >>> try:
    ...     converter.structure({"pages": "ten"}, Doc)
    ... except Exception as exc:
    ...     describe_errors(exc, "input")
    ["input.pages: expected int, got 'ten'"]
    """
    lines = []
    for line in transform_error(exc, path=root, format_exception=_format_problem):
        problem, _, path = line.rpartition(" @ ")
        lines.append(f"{path}: {problem}" if problem else line)
    return lines


def structure(value: Any, cls: type[T], root: str) -> Result[T, list[str]]:
    """Structure ``value`` into ``cls``, or fail with ``path: problem`` lines.

    An instance of ``cls`` passes through unchanged.
    """
    if isinstance(cls, type) and isinstance(value, cls):
        return Success(value)
    try:
        return Success(converter.structure(value, cls))
    except Exception as exc:  # cattrs raises many types; all become messages
        return Failure(describe_errors(exc, root))


def to_json(value: Any) -> Any:
    """The JSON form of an attrs instance, record or plain value."""
    return converter.unstructure(value)


def fingerprint(value: Any) -> str:
    """A stable digest of a JSON-form value, for idempotency checks."""
    text = json.dumps(to_json(value), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
