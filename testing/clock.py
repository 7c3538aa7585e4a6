"""A clock tests control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when told to.

    >>> clock = FakeClock()
    >>> clock.now().isoformat()
    '2025-01-01T00:00:00+00:00'
    >>> clock.advance(timedelta(seconds=90)).isoformat()
    '2025-01-01T00:01:30+00:00'
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _aware(start or DEFAULT_START)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` and return the new time."""
        if delta < timedelta(0):
            raise ValueError(f"advance: expected a non-negative timedelta, got {delta!r}")
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (an aware datetime)."""
        self._now = _aware(when)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"expected an aware datetime, got {value!r}")
    return value.astimezone(UTC)
