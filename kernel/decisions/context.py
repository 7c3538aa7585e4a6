"""What every decision gets besides state: the time, fresh ids, its cause and the
kernel's settings; and the timing rules (backoff, poll times) decisions share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from attrs import frozen

from kernel.effects import AppendOutbox
from kernel.events import Event

BACKOFF_BASE = timedelta(seconds=1)
BACKOFF_CAP = timedelta(minutes=5)
DEFAULT_POLL_INTERVAL = timedelta(seconds=60)
OUTBOX_CLAIM_LEASE = timedelta(seconds=30)
"""How long a flush holds the events it claimed. A flush takes milliseconds; if
its process dies mid-flush, the events (and the later events of their runs)
wait this long before another flush may publish them (at-least-once)."""
IDEMPOTENCY_TIMEOUT = timedelta(hours=1)
"""After this long an IN_PROGRESS idempotency key is taken to belong to a crashed
caller, and the same command with the same payload may take it over."""
MAX_DELIVERY_ATTEMPTS = 3
"""Failed deliveries of one event before it is dead-lettered, unless the sink says
otherwise (``PluginRunner(max_retries=...)``)."""


def utc_only(name: str) -> tzinfo | None:
    """A time-zone lookup that knows only ``"UTC"`` (the kernel reads no zone files;
    ``adapters.create_kernel`` passes one backed by the system's time-zone database)."""
    return UTC if name == "UTC" else None


@frozen
class Settings:
    """The kernel's tunables that decisions read."""

    max_delivery_attempts: int = MAX_DELIVERY_ATTEMPTS
    idempotency_timeout: timedelta = IDEMPOTENCY_TIMEOUT
    zone_of: Callable[[str], tzinfo | None] = utc_only
    """Resolves a schedule's time-zone name (``None``: unknown)."""


@frozen
class Env:
    """The values a decision may not compute itself.

    ``new_id`` comes from the kernel's ``IdGenerator``: with a deterministic
    generator (``testing.SequentialIds``) a decision is a pure function.
    """

    now: datetime
    new_id: Callable[[], str]
    causation_id: str
    settings: Settings = Settings()

    def record(self, event: Event) -> AppendOutbox:
        """The effect that writes ``event`` to the outbox."""
        return AppendOutbox(event, self.new_id(), self.causation_id)


def next_attempt_at(attempt: int, now: datetime) -> datetime:
    """When a failed attempt may run again: exponential backoff from 1 s, capped at 5 min.

    >>> from datetime import UTC, datetime
    >>> t0 = datetime(2025, 1, 1, tzinfo=UTC)
    >>> [int((next_attempt_at(n, t0) - t0).total_seconds()) for n in (1, 2, 3, 12)]
    [1, 2, 4, 300]
    """
    # The exponent is bounded before multiplying: 2**20 s is far past the cap, and an
    # unbounded one overflows timedelta after some 47 attempts.
    delay = BACKOFF_BASE * int(2 ** min(max(attempt - 1, 0), 20))
    return now + min(delay, BACKOFF_CAP)


def poll_due(at: datetime, max_wait_until: datetime | None) -> datetime:
    """When to poll a suspended stage: ``at``, but no later than the end of its max wait,
    so a stage that times out fails when its wait ends, not a poll interval later.

    >>> from datetime import UTC, datetime
    >>> t0 = datetime(2025, 1, 1, tzinfo=UTC)
    >>> poll_due(t0 + timedelta(hours=1), t0 + timedelta(minutes=5)) == t0 + timedelta(minutes=5)
    True
    """
    return at if max_wait_until is None else min(at, max_wait_until)


def elapsed_ms(start: datetime | None, end: datetime) -> int:
    """Whole milliseconds from ``start`` to ``end`` (0 without a start)."""
    if start is None:
        return 0
    return max(int((end - start).total_seconds() * 1000), 0)
