"""The one place where psycopg and pool errors become :class:`StoreError`.

Kernel errors raised inside (``StaleVersionError``, ``StoreError``) pass
through unchanged. A deadlock or serialization failure becomes a
``TransactionConflictError`` (a ``StaleVersionError``, so the kernel retries);
every other driver error becomes a ``StoreError`` whose message says what the
store was doing and what went wrong, with the driver error chained as its
cause. A server that cannot be reached (a failed connect, a lost connection,
no pooled connection in time) gives a :class:`StoreUnavailableError`, whose
message names the server and libpq's reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Self, cast

import psycopg
from psycopg import Connection
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow
from psycopg_pool import PoolClosed, PoolTimeout

from kernel.errors import KernelError, StaleVersionError, StoreError

# SQLSTATE classes that mean the session is gone: connection exceptions (08)
# and operator intervention (57: terminated backend, server shutdown).
_CONNECTION_CLASSES = ("08", "57")


class StoreUnavailableError(StoreError):
    """The PostgreSQL server cannot be reached: connecting failed, the connection was
    lost, or no pooled connection became available in time (or the store is closed).

    Retrying later may succeed. ``unavailable`` says so to code that does not
    import this adapter (the worker hosts log such errors once per back-off
    step, without a traceback).
    """

    unavailable: ClassVar[bool] = True


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
        message = f"PostgresStore could not {action}: {describe(exc)}"
        if isinstance(exc, PoolTimeout | PoolClosed) or is_connection_loss(exc):
            raise StoreUnavailableError(message) from exc
        raise StoreError(message) from exc


def server(dsn: str) -> str:
    """``host:port`` of the server a DSN names, for messages (never the password).

    >>> server("postgresql://app:secret@db.internal:6432/prod")
    'db.internal:6432'
    >>> server("dbname=test")
    'localhost:5432'
    """
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "the server in the DSN"
    host = info.get("host") or info.get("hostaddr") or "localhost"
    return f"{host}:{info.get('port') or 5432}"


def libpq_message(exc: BaseException) -> str:
    """libpq's account of a failed connect, on one line, without psycopg's prefix."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.removeprefix("connection failed: ")


_DATABASE = re.compile(r'database "([^"]*)" does not exist')
_ROLE = re.compile(r'role "([^"]*)" does not exist')


def connect_reason(exc: BaseException, connect_timeout_s: float) -> str:
    """Why a connect failed, in a few words: refused, unknown host, no database, timed out..."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, pg_errors.ConnectionTimeout) or "timeout expired" in lowered:
        return f"no answer within the {connect_timeout_s:g} s connect timeout"
    if "connection refused" in lowered:
        return "connection refused"
    if any(
        words in lowered
        for words in ("failed to resolve host", "could not translate host name", "name or service")
    ):
        return "unknown host"
    if match := _DATABASE.search(text):
        return f"no database {match.group(1)!r}"
    if match := _ROLE.search(text):
        return f"no role {match.group(1)!r}"
    if "password" in lowered or "authentication failed" in lowered:
        return "authentication failed"
    if "no route to host" in lowered or "network is unreachable" in lowered:
        return "no route to host"
    if "ssl" in lowered:
        return "SSL negotiation failed"
    return "connection failed"


def connect_failure(
    dsn: str, exc: BaseException, connect_timeout_s: float
) -> StoreUnavailableError:
    """The error for a failed connect: the server, the reason in words, then libpq's message.

    >>> refused = psycopg.OperationalError("connection failed: Connection refused")
    >>> str(connect_failure("postgresql://u:pw@127.0.0.1:1/db", refused, 5))
    'no PostgreSQL connection to 127.0.0.1:1 (connection refused): Connection refused'
    """
    reason = connect_reason(exc, connect_timeout_s)
    return StoreUnavailableError(
        f"no PostgreSQL connection to {server(dsn)} ({reason}): {libpq_message(exc)}"
    )


class ConnectHealth:
    """The last failed connect of a store's pool, until a connect succeeds."""

    __slots__ = ("failure",)

    def __init__(self) -> None:
        self.failure: psycopg.Error | None = None


def recording_connection(
    health: ConnectHealth, base: type[Connection[DictRow]] = Connection
) -> type[Connection[DictRow]]:
    """A subclass of ``base`` that notes in ``health`` whether the pool's last connect worked."""

    class PoolConnection(base):  # type: ignore[valid-type, misc]
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
            try:
                conn = super().connect(conninfo, **kwargs)
            except psycopg.Error as exc:
                health.failure = exc
                raise
            health.failure = None
            return cast("Self", conn)

    return PoolConnection
