"""The databases the host tests run real workers on: a SQLite file, or a PostgreSQL schema.

A :class:`Backend` gives the store URL a ``wfk`` subprocess is started with,
and opens the same database in the test process. The PostgreSQL backend
works in a fresh schema (named in the URL's ``?schema=``) and drops it at
the end; without a server it skips the test, or fails it when ``CI`` is set
(:func:`tests.postgres_support.require_postgres`).
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from psycopg.conninfo import conninfo_to_dict

from adapters.sqlite import SqliteStore
from kernel.ports import Store

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
"""The ``backend`` fixture's parameters (``tests/hosts/conftest.py``)."""


def postgres_url(dsn: str, schema: str) -> str:
    """``postgresql://...?schema=NAME`` for ``dsn`` (a URL or a ``key=value`` string)."""
    info = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    user = info.pop("user", "")
    password = info.pop("password", None)
    host = info.pop("host", "")
    port = info.pop("port", None)
    dbname = info.pop("dbname", "")
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    netloc = (auth + "@" if auth else "") + host + (f":{port}" if port else "")
    query = urlencode({**info, "schema": schema})
    return f"postgresql://{netloc}/{quote(dbname, safe='')}?{query}"


class Backend:
    """One database for a test: its store URL, and stores opened on it here."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self._opened: list[Store] = []
        self.schema: str | None = None
        if kind == "postgres":
            from tests.postgres_support import fresh_schema, require_postgres

            self.dsn = require_postgres()
            self.schema = fresh_schema()
            self.url = postgres_url(self.dsn, self.schema)
        else:
            self.path = tmp_path / "wfk.db"
            self.url = f"sqlite:///{self.path}"

    def open(self) -> Store:
        """A new store on the database (closed, and the schema dropped, by :meth:`close`)."""
        store: Store
        if self.kind == "postgres":
            from adapters.postgres import PostgresStore

            assert self.schema is not None
            store = PostgresStore(self.dsn, schema=self.schema, pool_size=2)
        else:
            store = SqliteStore(self.path)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            with suppress(Exception):
                store.close()
        if self.schema is not None:
            from tests.postgres_support import drop_schema

            drop_schema(self.schema)
