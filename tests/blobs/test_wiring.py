"""Wiring (SPEC §16.1 "Testing kit wiring", "Blobs"): ``blobs=`` and ``inline_limit=`` on
``create_test_kernel`` and ``adapters.create_kernel``, their bad values, and the clear
error a reference to a missing blob gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters import create_kernel
from adapters.blobs import FileBlobStore, MemoryBlobStore
from adapters.blobs_store import BlobbingStore
from adapters.memory import InMemoryStore
from adapters.sqlite import SqliteStore
from kernel import RunCreate, StoreError
from kernel.ports import JobNotifier, WorkAnnouncer
from kernel.records import WorkflowRun
from testing import FakeClock, create_test_kernel
from tests.blobs.support import LIMIT, run_texts, texts


def test_without_blobs_every_value_stays_inline() -> None:
    tk = create_test_kernel(texts)
    run_id = run_texts(tk, "x" * 300_000)

    assert tk.blobs is None and isinstance(tk.store, InMemoryStore)
    run = tk.store.get_run(run_id)
    assert run is not None and run.input == {"text": "x" * 300_000}


def test_an_inline_limit_alone_gives_the_test_kernel_a_memory_blob_store() -> None:
    tk = create_test_kernel(texts, inline_limit=LIMIT)

    assert isinstance(tk.blobs, MemoryBlobStore)
    assert isinstance(tk.store, BlobbingStore) and tk.kernel.store is tk.store
    assert tk.store.inline_limit == LIMIT


def test_blobs_alone_default_the_limit_to_256_kib(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    kernel = create_kernel(texts, store=InMemoryStore(), blobs=blobs)

    assert isinstance(kernel.store, BlobbingStore)
    assert kernel.store.blobs is blobs and kernel.store.inline_limit == 262_144


@pytest.mark.parametrize("limit", [0, -1, True, 1.5, "1000"])
def test_an_inline_limit_that_is_not_a_positive_int_is_refused(limit: Any) -> None:
    message = f"inline_limit: expected a number of bytes > 0, got {limit!r}"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        create_test_kernel(texts, inline_limit=limit)
    with pytest.raises(ValueError, match="inline_limit: expected"):
        create_kernel(texts, store=InMemoryStore(), blobs=MemoryBlobStore(), inline_limit=limit)


def test_create_kernel_refuses_an_inline_limit_without_blobs() -> None:
    with pytest.raises(ValueError, match="inline_limit: 1000 needs blobs="):
        create_kernel(texts, store=InMemoryStore(), inline_limit=1000)


def test_the_wrapper_keeps_the_wrapped_stores_capabilities(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "wf.db")
    wrapped = create_kernel(texts, store=store, blobs=MemoryBlobStore()).store

    assert isinstance(wrapped, WorkAnnouncer) and not isinstance(wrapped, JobNotifier)
    store.close()


def test_a_missing_blob_is_a_store_error_naming_run_stage_and_reference(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "wf.db")
    blobs = FileBlobStore(tmp_path / "blobs")
    tk = create_test_kernel(texts, store=store, clock=FakeClock(), blobs=blobs, inline_limit=LIMIT)
    run_id = run_texts(tk, "x" * 2_000)
    [ref] = [info.ref for info in blobs.list_blobs(f"runs/{run_id}/stages/b/")]
    (tmp_path / "blobs").joinpath(*ref.split("/")).unlink()

    with pytest.raises(StoreError) as raised:
        tk.store.get_blob(f"runs/{run_id}/stages/b/output")

    message = str(raised.value)
    assert f"the output of stage 'b' of run '{run_id}'" in message
    assert f"blob '{ref}' is missing" in message
    store.close()


def test_a_missing_input_blob_names_the_run_and_stops_its_first_stage() -> None:
    tk = create_test_kernel(texts, inline_limit=LIMIT)
    created = tk.dispatch(RunCreate(workflow_id="texts", input={"text": "x" * 2_000}))
    assert isinstance(tk.blobs, MemoryBlobStore)
    [info] = tk.blobs.list_blobs()
    tk.blobs.delete(info.ref)

    message = f"the input of run '{created.workflow_run_id}': blob '{info.ref}' is missing"
    with pytest.raises(StoreError, match=message):
        tk.store.get_run(created.workflow_run_id)
    with pytest.raises(StoreError, match=message):
        tk.run_until_idle()


def test_a_host_given_the_raw_store_reads_through_the_kernels_wrapper() -> None:
    """Hosts take ``(kernel, store)``: the store a kernel with ``blobs=`` wraps stands
    for the wrapper, so a host never hands a stage a ``{"$blob": ref}`` marker."""
    from datetime import timedelta

    from adapters.hosts import ServerlessHost, WorkerHost
    from tests.hosts.waiting import wait_for

    raw = InMemoryStore()
    kernel = create_kernel(texts, store=raw, blobs=MemoryBlobStore(), inline_limit=LIMIT)
    assert ServerlessHost(kernel, raw, worker_id="fn").store is kernel.store
    assert ServerlessHost(kernel, InMemoryStore(), worker_id="fn").store is not kernel.store

    created = kernel.dispatch(RunCreate(workflow_id="texts", input={"text": "x" * 2 * LIMIT}))
    host = WorkerHost(
        kernel, raw, worker_id="w1", orchestration_interval=timedelta(milliseconds=20)
    )
    host.start()
    try:

        def finished() -> WorkflowRun | None:
            found = kernel.store.get_run(created.workflow_run_id)
            return found if found is not None and found.is_terminal else None

        run = wait_for("the run to finish", finished, timeout=30)
    finally:
        host.stop()
    assert run.output == {"text": "x" * 2 * LIMIT + "a" * 10 + "b" * 10 + "c" * 10}
