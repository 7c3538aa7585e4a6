"""No blob outlives what references it (SPEC §16): a rolled-back transaction deletes the
blobs it wrote, a crash before the commit leaves blobs that ``sweep`` deletes, and a
purge deletes its runs' blobs once it has committed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from adapters.blobs import FileBlobStore, MemoryBlobStore, sweep
from adapters.memory import InMemoryStore
from adapters.sqlite import SqliteStore
from kernel import RunCreate, RunRerunFrom, RunsPurge, Status
from kernel.effects import InsertRun, PurgeRun, PutBlob
from testing import FakeClock, create_test_kernel
from tests.blobs.support import LIMIT, Failing, run_texts, texts

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def files_in(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def test_a_run_create_that_rolls_back_deletes_the_input_blob() -> None:
    store = Failing(InMemoryStore(), when=InsertRun)
    blobs = MemoryBlobStore()
    tk = create_test_kernel(texts, store=store.as_store(), blobs=blobs, inline_limit=LIMIT)

    with pytest.raises(RuntimeError, match="disk full"):
        tk.dispatch(RunCreate(workflow_id="texts", input={"text": "x" * 2_000}))

    assert blobs.puts == 1  # it was written...
    assert len(blobs) == 0  # ...and deleted with the rollback
    assert store.inner.list_runs() == []


def test_a_stage_finish_that_rolls_back_deletes_the_output_blob() -> None:
    store = Failing(InMemoryStore())
    blobs = MemoryBlobStore()
    tk = create_test_kernel(texts, store=store.as_store(), blobs=blobs, inline_limit=LIMIT)
    tk.dispatch(RunCreate(workflow_id="texts", input={"text": "x" * 2_000}))
    store.when = PutBlob  # the first stage's finish fails

    with pytest.raises(RuntimeError, match="disk full"):
        tk.run_until_idle()

    assert blobs.puts == 2  # the input, then stage a's output
    assert [info.ref.split("/")[2] for info in blobs.list_blobs()] == ["input"]


def test_blobs_left_by_a_failed_commit_are_swept_and_referenced_ones_kept() -> None:
    clock = FakeClock()
    store = Failing(InMemoryStore())
    blobs = MemoryBlobStore(clock)
    tk = create_test_kernel(
        texts, store=store.as_store(), clock=clock, blobs=blobs, inline_limit=LIMIT
    )
    kept = run_texts(tk, "x" * 2_000)
    store.at_commit = True  # the commit is lost after the input blob was written
    with pytest.raises(ConnectionError):
        tk.dispatch(RunCreate(workflow_id="texts", input={"text": "y" * 2_000}))
    store.at_commit = False
    assert len(blobs) == 5  # kept's input and three outputs, and the orphan

    # Too young to tell from a transaction still open: kept.
    assert sweep(tk.store, blobs, older_than=HOUR, now=clock.now()) == 0
    clock.advance(2 * HOUR)
    assert sweep(tk.store, blobs, older_than=HOUR, now=clock.now()) == 1

    assert len(blobs) == 4
    run = tk.store.get_run(kept)
    assert run is not None and run.output == {"text": "x" * 2_000 + "a" * 10 + "b" * 10 + "c" * 10}


def test_a_purge_deletes_its_runs_blobs_and_keeps_the_others(tmp_path: Path) -> None:
    clock = FakeClock()
    blobs = FileBlobStore(tmp_path / "blobs")
    store = SqliteStore(tmp_path / "wf.db")
    tk = create_test_kernel(texts, store=store, clock=clock, blobs=blobs, inline_limit=LIMIT)
    old = run_texts(tk, "x" * 2_000)
    clock.advance(30 * DAY)
    young = run_texts(tk, "y" * 2_000)

    purged = tk.dispatch(RunsPurge(older_than=DAY))

    assert purged.run_ids == (old,)
    assert not (tmp_path / "blobs" / "runs" / old).exists()
    assert len(files_in(tmp_path / "blobs" / "runs" / young)) == 4
    store.close()


def test_a_purge_that_rolls_back_keeps_every_blob() -> None:
    clock = FakeClock()
    store = Failing(InMemoryStore(), when=PurgeRun)
    blobs = MemoryBlobStore(clock)
    tk = create_test_kernel(
        texts, store=store.as_store(), clock=clock, blobs=blobs, inline_limit=LIMIT
    )
    run_id = run_texts(tk, "x" * 2_000)
    clock.advance(2 * DAY)

    with pytest.raises(RuntimeError, match="disk full"):
        tk.dispatch(RunsPurge(older_than=DAY))

    assert len(blobs) == 4
    run = tk.store.get_run(run_id)
    assert run is not None and run.input == {"text": "x" * 2_000}


class PlainBlobs:
    """A blob store with only the port's three methods (as one over S3 would be)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> str:
        self.blobs[key] = data
        return key

    def get(self, ref: str) -> bytes:
        return self.blobs[ref]

    def delete(self, ref: str) -> None:
        self.blobs.pop(ref, None)


def test_a_purge_deletes_the_referenced_blobs_of_a_store_that_cannot_list() -> None:
    clock = FakeClock()
    blobs = PlainBlobs()
    tk = create_test_kernel(texts, clock=clock, blobs=blobs, inline_limit=LIMIT)
    run_texts(tk, "x" * 2_000)
    assert len(blobs.blobs) == 4
    clock.advance(2 * DAY)

    assert tk.dispatch(RunsPurge(older_than=DAY)).purged == 1

    assert blobs.blobs == {}


def test_rerun_leaves_the_dropped_outputs_to_the_sweep() -> None:
    clock = FakeClock()
    blobs = MemoryBlobStore(clock)
    tk = create_test_kernel(texts, clock=clock, blobs=blobs, inline_limit=LIMIT)
    run_id = run_texts(tk, "x" * 2_000)
    before = {info.ref for info in blobs.list_blobs()}

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="b"))
    tk.run_until_idle()
    clock.advance(2 * HOUR)
    swept = sweep(tk.store, blobs, older_than=HOUR, now=clock.now())

    # b's first output went. The input and a's output are still in use, and so is
    # c's first output: the first workflow:completed event in the outbox names it.
    after = {info.ref for info in blobs.list_blobs()}
    assert swept == 1
    assert len(after) == 5 and len(before & after) == 3
    run = tk.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"text": "x" * 2_000 + "a" * 10 + "b" * 10 + "c" * 10}


def test_sweep_refuses_a_negative_age() -> None:
    tk = create_test_kernel(texts, inline_limit=LIMIT)
    with pytest.raises(ValueError, match="older_than"):
        sweep(tk.store, MemoryBlobStore(), older_than=-HOUR)
