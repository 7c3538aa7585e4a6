"""``FileBlobStore``: one file per blob under its directory, written atomically, and no
reference reaches outside the directory."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.blobs import FileBlobStore, ListableBlobStore, MemoryBlobStore


def test_put_returns_a_reference_that_get_reads_and_delete_removes(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    ref = blobs.put("runs/r1/input/abc", b'{"text":"hello"}')

    assert blobs.get(ref) == b'{"text":"hello"}'
    blobs.delete(ref)
    blobs.delete(ref)  # absent: no error
    with pytest.raises(KeyError, match="runs/r1/input/abc"):
        blobs.get(ref)
    assert [path.name for path in tmp_path.rglob("*")] == ["runs"]  # emptied folders go


def test_a_write_leaves_no_temporary_file_and_replaces_whole(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    ref = blobs.put("runs/r1/input/abc", b"first")
    blobs.put("runs/r1/input/abc", b"second")

    assert blobs.get(ref) == b"second"
    assert [path.name for path in tmp_path.rglob("*") if path.is_file()] == ["abc"]


def test_a_write_that_fails_before_the_rename_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = FileBlobStore(tmp_path)
    blobs.put("runs/r1/input/abc", b"old")

    def fail(*_: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="no space"):
        blobs.put("runs/r1/input/abc", b"new")
    monkeypatch.undo()

    assert blobs.get("runs/r1/input/abc") == b"old"  # the old blob, whole
    assert [path.name for path in tmp_path.rglob("*") if path.is_file()] == ["abc"]


@pytest.mark.parametrize(
    "ref", ["../outside", "runs/../../outside", "/etc/passwd", "runs//x", "runs/./x", "a\x00b"]
)
def test_a_reference_that_could_leave_the_directory_is_refused(tmp_path: Path, ref: str) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    (tmp_path / "outside").write_bytes(b"secret")

    with pytest.raises(ValueError, match="ref: expected '/'-separated names"):
        blobs.get(ref)
    with pytest.raises(ValueError, match="ref: expected"):
        blobs.delete(ref)
    with pytest.raises(ValueError, match="key: expected"):
        blobs.put(ref, b"x")
    assert (tmp_path / "outside").read_bytes() == b"secret"


def test_any_name_is_a_key_and_comes_back_from_the_listing(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    keys = ["runs/r1/storage/.hidden/x", "runs/r1/storage/50% off/y", "runs/r2/input/z"]
    for key in keys:
        blobs.put(key, key.encode())

    assert sorted(info.ref for info in blobs.list_blobs()) == sorted(keys)
    assert sorted(info.ref for info in blobs.list_blobs("runs/r1/")) == sorted(keys[:2])
    assert [blobs.get(key) for key in keys] == [key.encode() for key in keys]
    assert not any(path.name.startswith(".") for path in tmp_path.rglob("*"))


def test_the_listing_says_when_each_blob_was_written(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    before = datetime.now(UTC).replace(microsecond=0)
    blobs.put("runs/r1/input/a", b"x")

    [info] = blobs.list_blobs()
    assert info.written_at >= before.replace(second=0) and info.written_at.tzinfo is not None
    with pytest.raises(ValueError, match="prefix"):
        list(blobs.list_blobs("runs"))


def test_both_blob_stores_list_and_take_bytes_only(tmp_path: Path) -> None:
    for blobs in (FileBlobStore(tmp_path), MemoryBlobStore()):
        assert isinstance(blobs, ListableBlobStore)
        with pytest.raises(TypeError, match="data: expected bytes, got str"):
            blobs.put("runs/r1/input/a", "text")  # type: ignore[arg-type]
