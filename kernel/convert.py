"""The one cattrs converter: validation of inputs and JSON form of records.

Primitives are structured strictly (``"5"`` is not an int, ``1`` is not a
bool), unknown keys are refused, and every failure is reported as a list
of ``path: problem`` lines such as ``input.pages: expected int, got 'ten'``.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSequence, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, list_structure_factory
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
    """The member of ``cls`` whose value is ``value``, for inputs and stored rows alike.

    >>> from kernel.status import Status
    >>> converter.structure("RUNNING", Status) is Status.RUNNING
    True
    >>> converter.structure("running", Status)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: expected one of 'PENDING', ..., got 'running'
    """
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
# str and int: give enums their own hooks so they come back as members (the
# PostgreSQL store structures its rows' enum columns with these too).
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


def _is_instance(value: Any, cls: Any) -> bool:
    """Whether ``value`` already is a ``cls``; ``False`` for what refuses the question
    (a ``TypedDict`` raises on ``isinstance``) and for generic aliases."""
    try:
        return isinstance(cls, type) and isinstance(value, cls)
    except TypeError:
        return False


def _shape_checked(
    expected: str, fits: Callable[[Any], bool], inner: Callable[[Any, Any], Any]
) -> Callable[[Any, Any], Any]:
    """``inner``, refusing first a value of the wrong shape with a message that names it
    (cattrs would iterate a string into a list of characters, or fail on ``.items``)."""

    def hook(value: Any, cls: Any) -> Any:
        if _is_instance(value, cls):
            return value  # an instance (a typed object inside plain data) passes through
        if not fits(value):
            raise TypeError(f"expected {expected}, got {value!r}")
        return inner(value, cls)

    return hook


def _is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_array(value: Any) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | bytearray | Mapping)


# Only the plain containers JSON data fills: TypedDicts, named tuples, Counters,
# deques and sets keep cattrs' own hooks.
_MAPPINGS = frozenset({dict, Mapping, MutableMapping})
_ARRAYS = frozenset({list, tuple, Sequence, MutableSequence})


def _is_mapping_type(cls: Any) -> bool:
    return (get_origin(cls) or cls) in _MAPPINGS


def _is_array_type(cls: Any) -> bool:
    return (get_origin(cls) or cls) in _ARRAYS


def _sequence_hook(cls: Any) -> Any:
    args = get_args(cls)
    if get_origin(cls) is tuple and args and args[-1] is not Ellipsis:
        inner = converter.gen_structure_hetero_tuple(cls)
    elif (get_origin(cls) or cls) in (list, MutableSequence):
        inner = list_structure_factory(cls, converter)
    else:
        inner = homogenous_tuple_structure_factory(cls, converter)
    return _shape_checked("a list", _is_array, inner)


def _is_plain_literal(cls: Any) -> bool:
    return get_origin(cls) is Literal and not any(isinstance(a, enum.Enum) for a in get_args(cls))


def _literal_hook(cls: Any) -> Any:
    allowed = get_args(cls)
    expected = ", ".join(repr(value) for value in allowed)

    def hook(value: Any, _: Any) -> Any:
        # Compared with their types too: True is not 1, and 1 is not "1".
        if not any(type(value) is type(option) and value == option for option in allowed):
            raise ValueError(f"expected one of {expected}, got {value!r}")
        return value

    return hook


converter.register_structure_hook_factory(
    attrs.has,
    lambda cls: _shape_checked(
        "a mapping", _is_mapping, converter.gen_structure_attrs_fromdict(cls)
    ),
)
converter.register_structure_hook_factory(
    _is_mapping_type,
    lambda cls: _shape_checked("a mapping", _is_mapping, converter.gen_structure_mapping(cls)),
)
converter.register_structure_hook_factory(_is_array_type, _sequence_hook)
converter.register_structure_hook_factory(_is_plain_literal, _literal_hook)
converter.register_structure_hook(datetime, _structure_datetime)
converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
converter.register_structure_hook(timedelta, _structure_timedelta)
converter.register_unstructure_hook(timedelta, lambda value: value.total_seconds())


def _structure_decimal(value: Any, _: type[Any]) -> Decimal:
    """Money: a ``Decimal``, an int or a decimal string; never a float, which is not exact.

    >>> converter.structure("0.30000000", Decimal)
    Decimal('0.30000000')
    >>> converter.structure(0.3, Decimal)
    Traceback (most recent call last):
    ...
    TypeError: expected a Decimal, an int or a decimal string, got 0.3
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"expected a decimal string, got {value!r}") from None
        if parsed.is_finite():
            return parsed
        raise ValueError(f"expected a finite decimal, got {value!r}")
    raise TypeError(f"expected a Decimal, an int or a decimal string, got {value!r}")


converter.register_structure_hook(Decimal, _structure_decimal)
# Decimals travel as strings in JSON (outbox payloads, metrics): exact, and any
# JSON library reads them.
converter.register_unstructure_hook(Decimal, str)


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
    if _is_instance(value, cls):
        return Success(value)
    try:
        return Success(converter.structure(value, cls))
    except Exception as exc:  # cattrs raises many types; all become messages
        return Failure(describe_errors(exc, root))


def to_json(value: Any) -> Any:
    """The JSON form of an attrs instance, record or plain value."""
    return converter.unstructure(value)


_JSON_SCALARS = (str, int, float, bool, type(None))


def json_problems(value: Any, path: str) -> list[str]:
    """``path: problem`` lines for the parts of ``value`` (in JSON form) that no store
    can write as JSON: objects json does not know, and NaN or infinite numbers
    (which PostgreSQL's ``jsonb`` refuses).

    >>> json_problems({"ok": [1, "a", None], "bad": [0.5, object]}, "metrics")
    ["metrics['bad'][1]: expected a JSON value, got <class 'object'>"]
    """
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path}: expected a finite number, got {value!r}"]
    if isinstance(value, _JSON_SCALARS):
        return []
    if isinstance(value, list | tuple):
        return [
            line
            for index, item in enumerate(value)
            for line in json_problems(item, f"{path}[{index}]")
        ]
    if isinstance(value, dict):
        return [
            line
            for key, item in value.items()
            for line in (
                json_problems(item, f"{path}[{key!r}]")
                if isinstance(key, _JSON_SCALARS)
                else [f"{path}: expected a JSON key, got {key!r}"]
            )
        ]
    return [f"{path}: expected a JSON value, got {value!r}"]


def command_fingerprint(cmd: Any) -> str:
    """The digest an idempotency key of ``cmd`` is checked against: every field but
    the key, each converted by its runtime value (a malformed field reaches the
    decision and its validation error instead of crashing here)."""
    payload = {
        field.name: to_json(getattr(cmd, field.name))
        for field in attrs.fields(type(cmd))
        if field.name != "idempotency_key"
    }
    return fingerprint(payload)


def fingerprint(value: Any) -> str:
    """A stable digest of a JSON-form value, for idempotency checks."""
    text = json.dumps(to_json(value), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
