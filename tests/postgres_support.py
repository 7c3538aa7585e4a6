"""Helpers for tests that need a PostgreSQL server (``WFK_POSTGRES_DSN``).

Without a reachable server, :func:`require_postgres` skips the calling test
with the reason; when the ``CI`` environment variable is set it fails the
test instead, so a CI job cannot pass by silently skipping. Tests work in
schemas of their own (:func:`fresh_schema`) and drop them afterwards.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from kernel.effects import StoreEffect
from kernel.ports import Store

T = TypeVar("T")

DSN = os.environ.get("WFK_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
"""The server the PostgreSQL tests use."""


@functools.cache
def _server_problem() -> str | None:
    try:
        with psycopg.connect(DSN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip()}"


def require_postgres() -> str:
    """The DSN; skip the test (fail it when ``CI`` is set) if the server is unreachable."""
    problem = _server_problem()
    if problem is not None:
        info = conninfo_to_dict(DSN)
        where = f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname')}"
        message = f"PostgreSQL at {where} (WFK_POSTGRES_DSN) is unreachable: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return DSN


def fresh_schema() -> str:
    """A schema name no other test uses."""
    return f"wfk_test_{uuid.uuid4().hex[:12]}"


def drop_schema(schema: str) -> None:
    """Drop ``schema`` and everything in it, if it exists."""
    server_execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def connect_to(schema: str) -> psycopg.Connection[dict[str, Any]]:
    """An autocommit connection (rows as dicts) whose search path is ``schema``."""
    conn = psycopg.connect(DSN, autocommit=True, row_factory=dict_row)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return conn


def server_execute(query: sql.SQL | sql.Composed, *args: Any) -> list[tuple[Any, ...]]:
    """Run one statement on a connection of its own (the test's view of the server)."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        cursor = conn.execute(query, args or None)
        return cursor.fetchall() if cursor.description else []


def apply(store: Store, *effects: StoreEffect) -> None:
    """Apply ``effects`` in one committed transaction."""
    with store.transaction() as tx:
        tx.apply(effects)


def race(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` in ``count`` threads released together; re-raise any error."""
    barrier = threading.Barrier(count, timeout=30)

    def start(index: int) -> T:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))
