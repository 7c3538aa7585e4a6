"""Random, unique ids."""

from __future__ import annotations

import os

_BATCH = 256
"""Ids made from one read of the system's random source."""

_made: list[str] = []
"""Ids made ahead and not handed out yet, shared by every ``UuidIds`` of the process."""


def _forget_made() -> None:
    # A forked child must not hand out the ids its parent will hand out too.
    _made.clear()


if hasattr(os, "register_at_fork"):  # pragma: no branch - not on Windows
    os.register_at_fork(after_in_child=_forget_made)


def _make_batch() -> list[str]:
    """``_BATCH`` random (version 4) UUID strings from one ``os.urandom`` call.

    The same bits as ``str(uuid.uuid4())`` sets, without a system call and a
    ``UUID`` object per id.
    """
    raw = bytearray(os.urandom(16 * _BATCH))
    raw[6::16] = bytes((byte & 0x0F) | 0x40 for byte in raw[6::16])  # version 4
    raw[8::16] = bytes((byte & 0x3F) | 0x80 for byte in raw[8::16])  # RFC 4122 variant
    text = raw.hex()
    return [
        f"{text[at : at + 8]}-{text[at + 8 : at + 12]}-{text[at + 12 : at + 16]}-"
        f"{text[at + 16 : at + 20]}-{text[at + 20 : at + 32]}"
        for at in range(0, len(text), 32)
    ]


class UuidIds:
    """Makes UUID4 strings (32 hex digits and dashes).

    >>> import uuid
    >>> made = UuidIds().new_id()
    >>> uuid.UUID(made).version, str(uuid.UUID(made)) == made
    (4, True)
    """

    def new_id(self) -> str:
        try:
            return _made.pop()  # atomic: threads never get the same id
        except IndexError:
            _made.extend(_make_batch())
            return self.new_id()
