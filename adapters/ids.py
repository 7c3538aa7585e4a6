"""Unique ids: UUIDs of version 7 (RFC 9562), which sort by the time they were made.

Time-ordered ids keep every index on an id column growing at its end: a
transaction that inserts many rows (a group of jobs, a run with its stages)
writes a few index pages instead of one random page per row, which makes
commits cheaper on SQLite and PostgreSQL alike, and more so as tables grow.
"""

from __future__ import annotations

import os
import time

_BATCH = 256
"""Ids made from one read of the system's random source."""

_made: list[str] = []
"""Ids made ahead and not handed out yet, shared by every ``UuidIds`` of the process."""


def _forget_made() -> None:
    # A forked child must not hand out the ids its parent will hand out too.
    _made.clear()


if hasattr(os, "register_at_fork"):  # pragma: no branch - not on Windows
    os.register_at_fork(after_in_child=_forget_made)


_last = [0, -1]
"""The millisecond and counter of the last id made in this process."""


def _make_batch() -> list[str]:
    """``_BATCH`` version-7 UUID strings from one ``os.urandom`` call, in the order they
    are to be handed out (last first: ``list.pop`` takes from the end).

    Each id holds the Unix time in milliseconds (48 bits), then a 12-bit counter
    that orders the ids of one millisecond (a full counter moves on to the next
    millisecond), then 62 random bits that keep ids of different processes apart.
    """
    raw = bytearray(os.urandom(16 * _BATCH))
    ms, counter = _last
    now = time.time_ns() // 1_000_000
    if now > ms:  # a clock that steps back never makes ids sort before older ones
        ms, counter = now, -1
    for at in range(0, 16 * _BATCH, 16):
        counter += 1
        if counter > 0xFFF:
            ms, counter = ms + 1, 0
        raw[at : at + 6] = ms.to_bytes(6, "big")
        raw[at + 6] = 0x70 | (counter >> 8)  # version 7
        raw[at + 7] = counter & 0xFF
    _last[:] = [ms, counter]
    raw[8::16] = bytes((byte & 0x3F) | 0x80 for byte in raw[8::16])  # RFC variant
    text = raw.hex()
    made = [
        f"{text[at : at + 8]}-{text[at + 8 : at + 12]}-{text[at + 12 : at + 16]}-"
        f"{text[at + 16 : at + 20]}-{text[at + 20 : at + 32]}"
        for at in range(0, len(text), 32)
    ]
    made.reverse()
    return made


class UuidIds:
    """Makes version-7 UUID strings (32 hex digits and dashes), in ascending order
    within a process.

    >>> import uuid
    >>> ids = UuidIds()
    >>> first, second = ids.new_id(), ids.new_id()
    >>> uuid.UUID(first).version, str(uuid.UUID(first)) == first, first < second
    (7, True, True)
    """

    def new_id(self) -> str:
        try:
            return _made.pop()  # atomic: threads never get the same id
        except IndexError:
            _made.extend(_make_batch())
            return self.new_id()
