"""Store URLs: the only place that maps ``sqlite:///...`` and ``postgresql://...`` to a store.

* ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (three
  slashes, then the path), or ``sqlite:///:memory:``;
* ``postgresql://user:password@host:port/database`` (or ``postgres://``),
  with an optional ``?schema=name`` (default ``workflow_kernel``).

A SQLite file (and its directory) is created only by ``wfk migrate``, ``wfk
demo`` and commands given ``--create``; any other command refuses a missing
or empty file, or one without the schema, with a one-line error that says
how to create it. Commands that only read open a file that cannot be
written read-only.
"""

from __future__ import annotations

import argparse
import os
from contextlib import suppress
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

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


def hide_password(text: str, url: str) -> str:
    """``text`` with the URL's password replaced by ``***`` wherever a DSN shows it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    if not password:
        return text
    for secret in {password, unquote(password)}:
        text = text.replace(f":{secret}@", ":***@").replace(f"password={secret}", "password=***")
    return text


def command_name(args: argparse.Namespace) -> str:
    """The command that ran, as typed: ``wfk runs``, ``wfk run show``, ``wfk dlq replay``."""
    words = ["wfk", str(args.command)]
    action = getattr(args, "action", None)
    if action:
        words.append(str(action))
    return " ".join(words)


class Stores:
    """The stores one command opened, closed together when it ends (by ``main``)."""

    def __init__(self) -> None:
        self._opened: list[Store] = []

    def open(
        self,
        url: str,
        *,
        create: bool,
        reads_only: bool = False,
        offers_create: bool = False,
        pool_size: int = 2,
    ) -> Store:
        """Open the store a URL names; :meth:`close_all` closes it.

        ``create=False`` refuses a SQLite file that does not exist, is empty or
        has no schema (a command on a typo must not create a database);
        ``create=True`` also creates the file's directory. ``reads_only``: the
        command only reads, so a file that cannot be written is opened
        read-only. ``offers_create``: the command has ``--create``, which the
        error for a missing database then mentions.

        Raises:
            CliError: an unsupported URL, no database at the path, or a missing extra.
            StoreError: the database cannot be opened.
        """
        store: Store
        if url.startswith("sqlite:"):
            store = _sqlite(url, create, reads_only, offers_create)
        elif url.startswith(("postgresql://", "postgres://")):
            store = _postgres(url, pool_size)
        else:
            raise CliError(
                f"unsupported store URL {redact(url)!r}: expected sqlite:///PATH or "
                "postgresql://USER:PASSWORD@HOST/DATABASE"
            )
        self._opened.append(store)
        return store

    def close_all(self) -> None:
        while self._opened:
            # Closing is best effort: the command's outcome stands.
            with suppress(Exception):
                self._opened.pop().close()


def create_flag(parser: argparse.ArgumentParser) -> None:
    """``--create``: the flag of commands that write, for a SQLite database that does not exist."""
    parser.add_argument(
        "--create",
        action="store_true",
        help="create the SQLite database (and its directory) if it does not exist; without "
        "it, a missing database is an error (`wfk migrate` creates one too)",
    )


def verify(store: Store) -> None:
    """Connect and migrate now (PostgreSQL otherwise does both at first use).

    A worker calls it before it says it started, so a database it cannot
    use fails the command at once, in one line.
    """
    migrate = getattr(store, "migrate", None)
    if callable(migrate):
        migrate()


def _sqlite(url: str, create: bool, reads_only: bool, offers_create: bool) -> Store:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise CliError(
            f"bad SQLite URL {url!r}: expected sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite:///:memory:"
        )
    path = url[len(prefix) :]
    from adapters.sqlite import SqliteStore
    from adapters.sqlite.errors import NoDatabaseError, SchemaVersionError

    if path == ":memory:":
        return SqliteStore(path)
    file = Path(path)
    if create:
        file.parent.mkdir(parents=True, exist_ok=True)
        return SqliteStore(path)
    fix = f"check --store (or $WFK_STORE), or {{}} with `wfk migrate --store {url}`"
    if offers_create:
        fix += " or by adding --create"
    if file.is_dir():
        raise CliError(f"{path!r} is a directory, not a SQLite database file: check --store")
    read_only = reads_only and file.exists() and _unwritable(file)
    try:
        return SqliteStore(path, create=False, read_only=read_only)
    except NoDatabaseError as exc:
        if exc.problem == "missing":
            where = f"no database at {path!r}"
            if not file.parent.is_dir():
                where += f" (its directory {str(file.parent)!r} does not exist either)"
            raise CliError(f"{where}: {fix.format('create it')}") from exc
        if exc.problem == "empty":
            raise CliError(
                f"{path!r} is empty, not a workflow-kernel database: "
                f"{fix.format('create the schema in it')}"
            ) from exc
        raise CliError(
            f"{path!r} is a SQLite database without the workflow-kernel schema: "
            f"{fix.format('add the schema to it')}"
        ) from exc
    except SchemaVersionError as exc:
        if exc.found > exc.latest:
            raise CliError(f"{exc} (--store {url})") from exc
        raise CliError(
            f"{path!r} has schema version {exc.found}, older than version {exc.latest} of this "
            f"wfk, and cannot be written here: make it writable and run "
            f"`wfk migrate --store {url}` to upgrade it"
        ) from exc


def _unwritable(file: Path) -> bool:
    """Whether a read command should open ``file`` read-only.

    When this process cannot write the file or its directory, or the file
    has no write permission bit at all (``chmod 444``: read-only on purpose,
    even for root, who could write it).
    """
    if not file.stat().st_mode & 0o222:
        return True
    return not (os.access(file, os.W_OK) and os.access(file.parent, os.W_OK))


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
