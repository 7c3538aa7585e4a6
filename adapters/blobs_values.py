"""Large values in and out of blobs: the ``{"$blob": ref}`` marker, the size test, and
the per-transaction bookkeeping of :mod:`adapters.blobs_store`.

A value whose JSON is longer than the inline limit is written to the blob store
once and replaced by ``{"$blob": ref}``; reading a marker loads and decodes the
blob. A one-key dict ``{"$blob": <str>}`` is therefore reserved: a value of
that exact shape is read as a reference.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from kernel.convert import to_json
from kernel.errors import StoreError
from kernel.ports import BlobStore
from kernel.records import Json

MARKER = "$blob"
"""The key of a reference: a stored ``{"$blob": ref}`` stands for the blob's value."""

DEFAULT_INLINE_LIMIT = 256 * 1024
"""Values whose JSON is longer than this many bytes become blobs (SPEC §16)."""

_WALK_NODES = 64
"""How many parts of a value the size estimate looks at before it encodes instead."""


def ref_of(value: Json) -> str | None:
    """The reference if ``value`` is a ``{"$blob": ref}`` marker, else ``None``.

    >>> ref_of({"$blob": "runs/r1/input/x"}), ref_of({"a": 1}), ref_of("text")
    ('runs/r1/input/x', None, None)
    """
    if type(value) is dict and len(value) == 1:
        ref = value.get(MARKER)
        if isinstance(ref, str):
            return ref
    return None


def check_inline_limit(inline_limit: object) -> int:
    """``inline_limit`` if it is a positive int.

    >>> check_inline_limit(0)
    Traceback (most recent call last):
    ...
    ValueError: inline_limit: expected a number of bytes > 0, got 0
    """
    if isinstance(inline_limit, bool) or not isinstance(inline_limit, int) or inline_limit <= 0:
        raise ValueError(f"inline_limit: expected a number of bytes > 0, got {inline_limit!r}")
    return inline_limit


def certainly_within(value: Json, limit: int) -> bool:
    """Whether ``value``'s JSON is surely at most ``limit`` bytes, told without encoding
    it: an upper bound over at most a few dozen parts (a string counts six bytes a
    character, the most an escape takes). ``False`` means "encode and measure".

    >>> certainly_within({"name": "ada", "tags": [1, 2.5, None]}, 200)
    True
    >>> certainly_within("x" * 1000, 1000), certainly_within(list(range(100)), 10**6)
    (False, False)
    """
    budget = limit
    nodes = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        nodes += 1
        kind = type(item)
        if kind is str:
            budget -= 6 * len(item) + 3
        elif kind is dict or kind is list or kind is tuple:
            if nodes + len(stack) + len(item) * (2 if kind is dict else 1) > _WALK_NODES:
                return False
            budget -= 2
            if kind is dict:
                for key, member in item.items():
                    stack.append(key)
                    stack.append(member)
            else:
                stack.extend(item)
        elif item is None or kind is bool:
            budget -= 6
        elif kind is int:
            budget -= item.bit_length() // 3 + 3
        elif kind is float:
            budget -= 26
        else:
            return False
        if budget < 0 or nodes > _WALK_NODES:
            return False
    return True


def encode(value: Json) -> bytes:
    """The JSON bytes of ``value`` (compact, UTF-8); non-JSON values through the kernel's
    converter, as the stores write them."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default).encode()


def _default(value: Any) -> Any:
    converted = to_json(value)
    if type(converted) is type(value):
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return converted


def describe(key: str) -> str:
    """What a stored value's key or a blob key is, for error messages.

    >>> describe("runs/r1/stages/summarise/output")
    "the output of stage 'summarise' of run 'r1'"
    >>> describe("runs/r1/input/5f3a")
    "the input of run 'r1'"
    """
    parts = key.split("/")
    if len(parts) >= 3 and parts[0] == "runs":
        run = parts[1]
        if parts[2] == "stages" and len(parts) >= 4:
            return f"the output of stage {parts[3]!r} of run {run!r}"
        if parts[2] in ("input", "output"):
            return f"the {parts[2]} of run {run!r}"
        if parts[2] == "storage":
            return f"ctx.storage value {'/'.join(parts[3:])!r} of run {run!r}"
    return f"the stored value {key!r}"


class Offloader:
    """One transaction's (or one call's) view of the blob store.

    It remembers every value it loaded or wrote by identity, so a value read and
    written back in the same transaction (a run's input on each update, a stage's
    output that becomes the run's output) keeps its reference instead of becoming a
    second blob. ``written`` lists the references this transaction created: they
    are deleted if it rolls back.
    """

    def __init__(self, blobs: BlobStore, inline_limit: int) -> None:
        self.blobs = blobs
        self.inline_limit = inline_limit
        self.written: list[str] = []
        self._by_id: dict[int, tuple[Json, str]] = {}
        self._by_ref: dict[str, Json] = {}

    def offload(self, value: Json, prefix: str) -> Json:
        """``value``, or a marker for it once written under ``prefix`` + a fresh name."""
        if value is None or type(value) in (bool, int, float):
            return value
        known = self._by_id.get(id(value))
        if known is not None and known[0] is value:
            return {MARKER: known[1]}
        if ref_of(value) is not None or certainly_within(value, self.inline_limit):
            return value
        data = encode(value)
        if len(data) <= self.inline_limit:
            return value
        ref = self.blobs.put(prefix + uuid.uuid4().hex, data)
        self.written.append(ref)
        self._remember(value, ref)
        return {MARKER: ref}

    def resolve(self, value: Json, where: str) -> Json:
        """``value``, or the value its marker refers to.

        Raises:
            StoreError: the blob is missing or unreadable; the message names
                ``where`` (the run and stage) and the reference.
        """
        ref = ref_of(value)
        if ref is None:
            return value
        if ref in self._by_ref:
            return self._by_ref[ref]
        try:
            loaded = json.loads(self.blobs.get(ref))
        except (LookupError, OSError, ValueError) as exc:
            raise StoreError(
                f"{where}: blob {ref!r} is missing or unreadable in the blob store "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        self._remember(loaded, ref)
        return loaded

    def _remember(self, value: Json, ref: str) -> None:
        # The value is kept alive with its id, so the id cannot be reused meanwhile.
        self._by_id[id(value)] = (value, ref)
        self._by_ref[ref] = value
