"""Retry policies and timeouts of stages (SPEC §19).

A :class:`Retry` says how many attempts a stage gets, how long to wait
between them, and which exceptions are not worth another attempt. A stage's
own policy wins over its workflow's default, which wins over
:data:`DEFAULT_RETRY` (three attempts, 1 s, 2 s between them).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from attrs import field, frozen

from kernel.errors import DefinitionError


def _classes(value: Any) -> tuple[type[BaseException], ...]:
    # A single class is taken as a one-class tuple; anything else is checked by
    # check_retry, which names the stage.
    if isinstance(value, type):
        return (value,)
    return tuple(value) if isinstance(value, list | tuple | set | frozenset) else value


@frozen(kw_only=True)
class Retry:
    """How a failed attempt of a stage is retried.

    Attempt ``n`` (1-based) that fails with attempts left waits
    ``backoff * factor ** (n - 1)``, capped at ``max_backoff``, before the
    next one. An exception that is an instance of a class in
    ``non_retryable`` fails the stage at once, as does bad input, config or
    output (another attempt cannot change those). A timed-out attempt
    (``STAGE_TIMEOUT``) is retried like any other failure.

    >>> policy = Retry(max_attempts=4, backoff=timedelta(seconds=2), factor=3.0)
    >>> [policy.delay(n).total_seconds() for n in (1, 2, 3)]
    [2.0, 6.0, 18.0]
    """

    max_attempts: int = 3
    backoff: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    max_backoff: timedelta = timedelta(minutes=5)
    non_retryable: tuple[type[BaseException], ...] = field(default=(), converter=_classes)

    def delay(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt ``attempt`` (1-based)."""
        # The exponent is bounded: a large factor or attempt number would overflow
        # timedelta long after the cap is reached.
        steps = min(max(attempt - 1, 0), 64)
        seconds = self.backoff.total_seconds() * float(self.factor) ** steps
        cap = self.max_backoff.total_seconds()
        return timedelta(seconds=min(seconds, cap))

    def next_attempt_at(self, attempt: int, now: datetime) -> datetime:
        """When the attempt after failed attempt ``attempt`` may start."""
        return now + self.delay(attempt)

    def gives_up_on(self, exception: BaseException | None) -> bool:
        """Whether ``exception`` is of a class this policy never retries."""
        return exception is not None and isinstance(exception, self.non_retryable)


DEFAULT_RETRY = Retry()
"""The policy of a stage whose stage and workflow set none."""


def check_retry(owner: str, retry: object) -> Retry | None:
    """``retry`` itself if it is ``None`` or a valid :class:`Retry`.

    ``owner`` names what the policy belongs to (``"stage 'extract'"``).

    >>> check_retry("stage 'x'", Retry(max_attempts=0))
    Traceback (most recent call last):
    ...
    kernel.errors.DefinitionError: stage 'x': retry.max_attempts must be an int >= 1, got 0
    """
    if retry is None:
        return None
    if not isinstance(retry, Retry):
        raise DefinitionError(f"{owner}: retry must be a Retry(...), got {retry!r}")
    attempts = retry.max_attempts
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise DefinitionError(f"{owner}: retry.max_attempts must be an int >= 1, got {attempts!r}")
    for name in ("backoff", "max_backoff"):
        value = getattr(retry, name)
        if not isinstance(value, timedelta) or value <= timedelta(0):
            raise DefinitionError(
                f"{owner}: retry.{name} must be a positive timedelta, got {value!r}"
            )
    factor = retry.factor
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not factor >= 1:
        raise DefinitionError(f"{owner}: retry.factor must be a number >= 1, got {factor!r}")
    classes = retry.non_retryable
    if not isinstance(classes, tuple) or not all(
        isinstance(cls, type) and issubclass(cls, BaseException) for cls in classes
    ):
        raise DefinitionError(
            f"{owner}: retry.non_retryable must be a tuple of exception classes, got {classes!r}"
        )
    return retry


def check_timeout(owner: str, timeout: object) -> timedelta | None:
    """``timeout`` itself if it is ``None`` or a positive ``timedelta``.

    >>> check_timeout("stage 'x'", 30)
    Traceback (most recent call last):
    ...
    kernel.errors.DefinitionError: stage 'x': timeout must be a positive timedelta or None, got 30
    """
    if timeout is None:
        return None
    if not isinstance(timeout, timedelta) or timeout <= timedelta(0):
        raise DefinitionError(
            f"{owner}: timeout must be a positive timedelta or None, got {timeout!r}"
        )
    return timeout
