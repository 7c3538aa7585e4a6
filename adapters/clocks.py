"""The system clock, and time zones from the system's time-zone database."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class SystemClock:
    """Reads the wall clock as an aware UTC datetime."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@lru_cache(maxsize=256)
def system_zone(name: str) -> tzinfo | None:
    """The IANA time zone ``name`` (``"Europe/Riga"``), or ``None`` if the time-zone
    database has no such zone; what kernels get as ``zone_of`` for schedules.

    >>> system_zone("UTC") is UTC, system_zone("Mars/Olympus_Mons")
    (True, None)
    """
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError: a name that is no key at all ("../etc", "").
        return None
