"""The one place where psycopg and pool errors become :class:`StoreError`.

Kernel errors raised inside (``StaleVersionError``, ``StoreError``) pass
through unchanged. A deadlock or serialization failure becomes a
``TransactionConflictError`` (a ``StaleVersionError``, so the kernel retries);
every other driver error becomes a ``StoreError`` whose message says what the
store was doing and what went wrong, with the driver error chained as its
cause.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolClosed, PoolTimeout

from kernel.errors import KernelError, StaleVersionError, StoreError

# SQLSTATE classes that mean the session is gone: connection exceptions (08)
# and operator intervention (57: terminated backend, server shutdown).
_CONNECTION_CLASSES = ("08", "57")


class TransactionConflictError(StaleVersionError):
    """PostgreSQL aborted the transaction to break a deadlock or a serialization conflict.

    It subclasses ``StaleVersionError`` because it means the same thing to
    the kernel: a concurrent writer won, so load again and decide again.
    """

    def __init__(self, action: str, cause: str) -> None:
        KernelError.__init__(
            self, f"PostgresStore could not {action}: concurrent transactions conflicted ({cause})"
        )
        self.entity = "transaction"
        self.entity_id = ""
        self.expected = 0


def describe(exc: BaseException) -> str:
    """A one-line account of a driver error, naming its kind and cause."""
    if isinstance(exc, PoolTimeout):
        return f"no PostgreSQL connection became available ({exc})"
    if isinstance(exc, PoolClosed):
        return "the store is closed"
    if isinstance(exc, psycopg.Error):
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        state = exc.sqlstate
        if isinstance(exc, psycopg.OperationalError) and (
            state is None or state.startswith(_CONNECTION_CLASSES)
        ):
            return f"lost the PostgreSQL connection: {message}"
        if isinstance(exc, pg_errors.UniqueViolation):
            constraint = exc.diag.constraint_name or "a unique constraint"
            return f"duplicate row violates {constraint}: {message}"
        return f"PostgreSQL error {type(exc).__name__} ({state}): {message}"
    return f"{type(exc).__name__}: {exc}"


def is_connection_loss(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection (or the server) went away."""
    cause = exc.__cause__ if isinstance(exc, StoreError) else exc
    if not isinstance(cause, psycopg.OperationalError) or isinstance(
        cause, PoolTimeout | PoolClosed
    ):
        return False
    return cause.sqlstate is None or cause.sqlstate.startswith(_CONNECTION_CLASSES)


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Re-raise driver errors from the block as ``StoreError("<action>: <cause>")``."""
    try:
        yield
    except KernelError:
        raise
    except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
        raise TransactionConflictError(action, describe(exc)) from exc
    except (psycopg.Error, PoolTimeout, PoolClosed) as exc:
        raise StoreError(f"PostgresStore could not {action}: {describe(exc)}") from exc
