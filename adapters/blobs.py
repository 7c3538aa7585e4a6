"""Blob stores: where large payloads live outside the database (SPEC §16 "Large payloads").

:class:`FileBlobStore` keeps each blob in a file under one directory, written
atomically (a temporary file, ``fsync``, then ``os.replace``); :class:`MemoryBlobStore`
keeps them in a dict, for tests and for the in-memory store. Both implement the port
:class:`kernel.ports.BlobStore` (``put``/``get``/``delete``) and, beyond it,
:class:`ListableBlobStore` (``list_blobs``), which lets a purge delete a run's blobs
by prefix and :func:`sweep` find blobs no row references. A
store of your own (S3, GCS) needs only the three port methods.

Which values become blobs, and the store wrapper that writes and loads them, is
:mod:`adapters.blobs_store`; ``adapters.create_kernel(..., blobs=...)`` wires it.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import quote, unquote

from attrs import frozen

from kernel.ports import BlobStore, Clock

if TYPE_CHECKING:
    from kernel.ports import Store

__all__ = [
    "BlobInfo",
    "FileBlobStore",
    "ListableBlobStore",
    "MemoryBlobStore",
    "check_key",
    "sweep",
]

_TEMP_PREFIX = ".tmp-"


@frozen
class BlobInfo:
    """One stored blob: its reference and when it was written (aware UTC)."""

    ref: str
    written_at: datetime


@runtime_checkable
class ListableBlobStore(BlobStore, Protocol):
    """Optional capability: list blobs by key prefix (purges and sweeps use it)."""

    def list_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every blob whose key starts with ``prefix`` (a whole number of
        ``/``-separated parts, ending in ``/``, or ``""`` for all), in no set order."""
        ...


def check_key(key: object, field: str = "key") -> str:
    """``key`` if it is a usable blob key: ``/``-separated non-empty parts, none ``.``
    or ``..``, no NUL. Keys (and :class:`FileBlobStore` references, which are keys) can
    therefore never name anything outside the store.

    >>> check_key("runs/r1/input/abc")
    'runs/r1/input/abc'
    >>> check_key("../etc")
    Traceback (most recent call last):
    ...
    ValueError: key: expected '/'-separated names without '', '.' or '..', got '../etc'
    """
    if (
        not isinstance(key, str)
        or "\x00" in key
        or any(part in ("", ".", "..") for part in key.split("/"))
    ):
        raise ValueError(
            f"{field}: expected '/'-separated names without '', '.' or '..', got {key!r}"
        )
    return key


def _prefix_parts(prefix: str) -> list[str]:
    if prefix == "":
        return []
    if not prefix.endswith("/"):
        raise ValueError(f"prefix: expected '' or whole parts ending in '/', got {prefix!r}")
    return check_key(prefix[:-1], "prefix").split("/")


class MemoryBlobStore:
    """Blobs in a dict, in this process (tests, and beside ``InMemoryStore``).

    ``clock`` stamps ``written_at`` (default: the system clock), so a test with a
    ``FakeClock`` can age blobs for :func:`sweep`.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self._blobs: dict[str, tuple[bytes, datetime]] = {}
        self._lock = threading.Lock()
        self.puts = 0
        """How many ``put`` calls succeeded (tests check that small values wrote none)."""

    def put(self, key: str, data: bytes) -> str:
        check_key(key)
        if not isinstance(data, bytes):
            raise TypeError(f"data: expected bytes, got {type(data).__name__}")
        now = self._clock.now() if self._clock is not None else datetime.now(UTC)
        with self._lock:
            self._blobs[key] = (data, now)
            self.puts += 1
        return key

    def get(self, ref: str) -> bytes:
        with self._lock:
            found = self._blobs.get(ref)
        if found is None:
            raise KeyError(f"no blob {ref!r} in this MemoryBlobStore")
        return found[0]

    def delete(self, ref: str) -> None:
        with self._lock:
            self._blobs.pop(ref, None)

    def list_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        _prefix_parts(prefix)
        with self._lock:
            found = [
                BlobInfo(ref, written)
                for ref, (_, written) in self._blobs.items()
                if ref.startswith(prefix)
            ]
        return iter(found)

    def __len__(self) -> int:
        with self._lock:
            return len(self._blobs)


class FileBlobStore:
    """Blobs as files under ``directory`` (created if missing), one file per key.

    A key's parts become nested directories (each part percent-encoded, a leading
    ``.`` too, so no stored name starts with ``.``); the reference is the key
    itself. ``put`` writes a temporary file beside the target, ``fsync``s it,
    renames it into place with ``os.replace`` and ``fsync``s the directory, so a
    crash leaves either no blob or the whole blob. A reference with ``..`` or an
    empty part is refused (``ValueError``): no reference reaches outside
    ``directory``. Blobs written are durable before ``put`` returns, which is what
    the store's transaction that references them needs.

    Several processes may share one directory (workers of one SQLite file on one
    machine); workers on several machines need a shared file system or an object
    store of your own.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str, field: str) -> Path:
        parts = check_key(key, field).split("/")
        return self.directory.joinpath(*(_encode(part) for part in parts))

    def put(self, key: str, data: bytes) -> str:
        if not isinstance(data, bytes):
            raise TypeError(f"data: expected bytes, got {type(data).__name__}")
        path = self._path(key, "key")
        for attempt in range(3):
            self._make_dirs(path.parent)
            try:
                fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX)
                break
            except FileNotFoundError:  # a delete emptied and removed the folder meanwhile
                if attempt == 2:
                    raise
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return key

    def get(self, ref: str) -> bytes:
        path = self._path(ref, "ref")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise KeyError(f"no blob {ref!r}: {path} does not exist") from None

    def delete(self, ref: str) -> None:
        path = self._path(ref, "ref")
        path.unlink(missing_ok=True)
        # Empty directories go too (a purged run leaves none behind), up to the
        # top-level ones ("runs"), which stay for the next put.
        parent = path.parent
        while parent.parent != self.directory and parent != self.directory:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def list_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        top = self.directory.joinpath(*(_encode(part) for part in _prefix_parts(prefix)))
        for folder, _, files in os.walk(top):
            for name in files:
                if name.startswith(_TEMP_PREFIX):
                    continue  # a put in flight, or one a crash interrupted
                path = Path(folder, name)
                try:
                    written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                except FileNotFoundError:
                    continue  # deleted while listing
                parts = path.relative_to(self.directory).parts
                yield BlobInfo("/".join(unquote(part) for part in parts), written)

    def _make_dirs(self, folder: Path) -> None:
        missing: list[Path] = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for created in reversed(missing):
            try:
                created.mkdir()
            except FileExistsError:
                continue
            _fsync_dir(created.parent)


def _encode(part: str) -> str:
    encoded = quote(part, safe="")
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded


def _fsync_dir(folder: Path) -> None:
    """Make a new directory entry in ``folder`` durable (where the OS allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse a directory fsync
        pass
    finally:
        os.close(fd)


def sweep(
    store: Store,
    blobs: ListableBlobStore,
    *,
    older_than: timedelta,
    now: datetime | None = None,
) -> int:
    """Delete the blobs that no row of ``store`` references and that were written more
    than ``older_than`` before ``now`` (default: the system clock); returns how many.

    Such blobs are left by a process that crashed between writing a blob and
    committing the transaction that references it, by ``run.rerunFrom`` (the
    outputs it drops) and by a blob delete that failed. A blob younger than
    ``older_than`` is kept: its transaction may still be open, so choose an age
    longer than any transaction (an hour is plenty). ``store`` may be the
    ``BlobbingStore`` a kernel was given or the store it wraps.

    Raises:
        ValueError: ``older_than`` is negative or not a ``timedelta``.
    """
    from adapters.blobs_sweep import sweep as sweep_blobs

    if not isinstance(older_than, timedelta) or older_than < timedelta(0):
        raise ValueError(f"older_than: expected a timedelta >= 0, got {older_than!r}")
    return sweep_blobs(store, blobs, older_than=older_than, now=now or datetime.now(UTC))
