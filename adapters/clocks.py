"""The system clock."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """Reads the wall clock as an aware UTC datetime."""

    def now(self) -> datetime:
        return datetime.now(UTC)
