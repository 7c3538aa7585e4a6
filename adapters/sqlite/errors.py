"""The one place where ``sqlite3`` errors become :class:`~kernel.errors.StoreError`.

Callers never see a bare ``sqlite3`` traceback: every error is re-raised as
a ``StoreError`` whose message names the database file and the cause in
words (corrupt, read-only, locked too long, constraint), with the driver's
error chained as ``__cause__``. A store opened without ``create`` on a file
that is no workflow-kernel database raises :class:`NoDatabaseError`, and one
opened read-only on a schema it cannot use raises :class:`SchemaVersionError`.
"""

from __future__ import annotations

import sqlite3
from types import TracebackType
from typing import Literal

from kernel.errors import StoreError

Missing = Literal["missing", "empty", "no schema"]
"""Why a file is no workflow-kernel database: it does not exist, has 0 bytes, or has no schema."""

_MISSING_WORDS: dict[Missing, str] = {
    "missing": "does not exist",
    "empty": "is empty (0 bytes), not a workflow-kernel database",
    "no schema": "holds no workflow-kernel schema",
}


class NoDatabaseError(StoreError):
    """``SqliteStore(path, create=False)`` found no workflow-kernel database at ``path``.

    ``problem`` says why: the file is ``"missing"``, ``"empty"`` (0 bytes), or
    a SQLite database with ``"no schema"`` of this project. Nothing was written.
    """

    def __init__(self, path: str, problem: Missing) -> None:
        super().__init__(
            f"SQLite database {path!r} {_MISSING_WORDS[problem]} (opened with create=False, "
            "so nothing was written: create=True creates it)"
        )
        self.path = path
        self.problem: Missing = problem


class SchemaVersionError(StoreError):
    """A database opened read-only has a schema version other than this code's.

    A writable store would migrate an older schema; a read-only one cannot,
    and does not guess how to read it.
    """

    def __init__(self, path: str, found: int, latest: int) -> None:
        if found > latest:
            problem = (
                f"has schema version {found}, newer than version {latest}, the newest this "
                "workflow-kernel knows: upgrade workflow-kernel to open it"
            )
        else:
            problem = (
                f"has schema version {found}, older than version {latest} of this "
                "workflow-kernel, and is opened read-only: migrate it once with write access "
                "(`wfk migrate`, or SqliteStore(path)) to read it"
            )
        super().__init__(f"SQLite database {path!r} {problem}")
        self.path = path
        self.found = found
        self.latest = latest


# Friendlier words for the unique constraints the kernel can trip over.
_UNIQUE = {
    "runs.id": "a run with this id already exists",
    "stages.workflow_run_id, stages.stage_id": "the run already has a stage with this stage_id",
    "jobs.id": "a job with this id already exists",
    "signals.id": "a signal with this id already exists",
    "schedules.id": "a schedule with this id already exists",
    "usage.call_id": "this call_id is already in the usage ledger",
}


def describe(exc: sqlite3.Error, path: str, busy_timeout_s: float) -> str:
    """Say in words what went wrong with the database at ``path``."""
    where = f"SQLite database {path!r}"
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        prefix = "UNIQUE constraint failed: "
        if text.startswith(prefix) and text[len(prefix) :] in _UNIQUE:
            return f"{where}: {_UNIQUE[text[len(prefix) :]]} ({text})"
        return f"{where}: constraint violated ({text})"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return (
            f"{where} stayed locked by another connection for longer than "
            f"{busy_timeout_s:g} s ({text})"
        )
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return f"{where} is read-only: check the file's and its directory's permissions ({text})"
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "not a database" in text:
        return f"{where} is corrupt or is not an SQLite database ({text})"
    if name.startswith("SQLITE_CANTOPEN"):
        return f"{where} cannot be opened: check that its directory exists and is usable ({text})"
    if name == "SQLITE_FULL":
        return f"{where}: the disk is full ({text})"
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in text:
        return f"{where} is closed ({text})"
    return f"{where}: {text}"


class ErrorMap:
    """A reusable ``with`` block that re-raises ``sqlite3`` errors as ``StoreError``.

    A plain class rather than ``@contextmanager``: it is entered on every
    store call, and this costs no generator per use.
    """

    __slots__ = ("busy_timeout_s", "path")

    def __init__(self, path: str, busy_timeout_s: float) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, sqlite3.Error):
            raise StoreError(describe(exc, self.path, self.busy_timeout_s)) from exc
