"""Store URLs: the only place that maps ``sqlite:///...`` and ``postgresql://...`` to a store.

* ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (three
  slashes, then the path), or ``sqlite:///:memory:``;
* ``postgresql://user:password@host:port/database`` (or ``postgres://``),
  with an optional ``?schema=name`` (default ``workflow_kernel``).
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from adapters.cli.errors import CliError
from kernel.ports import Store

DEFAULT_STORE = "sqlite:///wfk.db"
STORE_ENV = "WFK_STORE"

POSTGRES_TIMEOUT_S = 5.0
"""How long a command waits for a PostgreSQL connection before reporting it unreachable."""


def store_url(given: str | None) -> str:
    """``--store``, else ``$WFK_STORE``, else ``sqlite:///wfk.db`` (in the working directory)."""
    return given or os.environ.get(STORE_ENV) or DEFAULT_STORE


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def open_store(url: str, *, create: bool, pool_size: int = 2) -> Store:
    """Open the store a URL names.

    ``create=False`` refuses a SQLite file that does not exist (a read-only
    command on a typo should not create an empty database); ``create=True``
    also creates the file's directory.

    Raises:
        CliError: an unsupported URL, a missing file, or a missing extra.
        StoreError: the database cannot be opened.
    """
    if url.startswith("sqlite:"):
        return _sqlite(url, create)
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres(url, pool_size)
    raise CliError(
        f"unsupported store URL {redact(url)!r}: expected sqlite:///PATH or "
        "postgresql://USER:PASSWORD@HOST/DATABASE"
    )


class Stores:
    """The stores one command opened, closed together when it ends (by ``main``)."""

    def __init__(self) -> None:
        self._opened: list[Store] = []

    def open(self, url: str, *, create: bool, pool_size: int = 2) -> Store:
        """:func:`open_store`, remembered for :meth:`close_all`."""
        store = open_store(url, create=create, pool_size=pool_size)
        self._opened.append(store)
        return store

    def close_all(self) -> None:
        while self._opened:
            # Closing is best effort: the command's outcome stands.
            with suppress(Exception):
                self._opened.pop().close()


def _sqlite(url: str, create: bool) -> Store:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise CliError(
            f"bad SQLite URL {url!r}: expected sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite:///:memory:"
        )
    path = url[len(prefix) :]
    if path != ":memory:":
        file = Path(path)
        if create:
            file.parent.mkdir(parents=True, exist_ok=True)
        elif not file.exists():
            raise CliError(
                f"no database at {path!r}: check --store (or $WFK_STORE), or create it with "
                f"`wfk migrate --store {url}`"
            )
    from adapters.sqlite import SqliteStore

    return SqliteStore(path)


def _postgres(url: str, pool_size: int) -> Store:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), "workflow_kernel")
    dsn = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"])))
    try:
        from adapters.postgres import PostgresStore
    except ImportError as exc:
        raise CliError(
            "PostgreSQL support needs the postgres extra: pip install 'workflow-kernel[postgres]' "
            f"({exc})"
        ) from exc
    try:
        return PostgresStore(dsn, schema=schema, pool_size=pool_size, timeout=POSTGRES_TIMEOUT_S)
    except ValueError as exc:
        raise CliError(f"bad PostgreSQL URL {redact(url)!r}: {exc}") from exc
