"""Random, unique ids."""

from __future__ import annotations

import uuid


class UuidIds:
    """Makes UUID4 strings (32 hex digits and dashes)."""

    def new_id(self) -> str:
        return str(uuid.uuid4())
