"""``evolve``: a copy of a frozen attrs value with some fields changed, faster than attrs'.

``attrs.evolve`` looks up the class's fields, then reads each unchanged field
with ``getattr`` in a loop, on every call. A stage execution makes about 17
such copies (records, effects, the host's state), so this module makes, once
per class, a function that reads all fields in one dict display and calls the
class with it. The result is the same object ``attrs.evolve`` makes: the class's
``__init__`` runs (defaults, converters and validators included), an unknown
field name is a ``TypeError``, and fields with ``init=False`` are left to
``__init__`` as attrs leaves them.

For type checking ``evolve`` *is* ``attrs.evolve``, so mypy's attrs plugin
checks every call's field names and types as before.

>>> from attrs import frozen
>>> @frozen
... class Point:
...     x: int
...     y: int = 0
>>> evolve(Point(1, 2), y=5)
Point(x=1, y=5)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

__all__ = ["evolve"]

_Copier = Callable[[Any, dict[str, Any]], Any]

_COPIERS: dict[type, _Copier] = {}
"""One copier per class, made on its first copy."""


def _copier(cls: type) -> _Copier:
    """``copy(inst, changes)`` for ``cls``: its init fields read from ``inst``, then
    ``changes`` over them, passed to ``cls``."""
    names = [(field.alias, field.name) for field in attrs.fields(cls) if field.init]
    reads = "".join(f"{alias!r}: inst.{name}, " for alias, name in names)
    source = f"def copy(inst, changes):\n    return cls(**{{{reads}**changes}})\n"
    namespace: dict[str, Any] = {"cls": cls}
    exec(compile(source, f"<evolve of {cls.__qualname__}>", "exec"), namespace)
    copy: _Copier = namespace["copy"]
    return copy


def _evolve(inst: Any, /, **changes: Any) -> Any:
    """``attrs.evolve(inst, **changes)``, made faster (module docstring)."""
    cls = inst.__class__
    copy = _COPIERS.get(cls)
    if copy is None:
        copy = _COPIERS[cls] = _copier(cls)
    return copy(inst, changes)


if TYPE_CHECKING:
    from attrs import evolve as evolve
else:
    evolve = _evolve
