"""Large run inputs, stage outputs and run outputs go to the blob store and come back
(SPEC §16 "Large payloads", §16.1 "Blobs"), on every store.

A value whose JSON exceeds ``inline_limit`` is written once as a blob and its row
keeps ``{"$blob": ref}``; every read through the kernel's store, and the next
stage's input, sees the value; the outbox carries the reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from adapters.blobs import FileBlobStore, MemoryBlobStore
from adapters.blobs_store import BlobbingStore
from kernel import WorkflowCompleted
from kernel.decisions.lifecycle import output_key
from kernel.ports import Store
from testing import create_test_kernel
from tests.blobs.support import LIMIT, is_ref, run_texts, texts
from tests.harness import run_of


def test_large_values_are_blobs_in_the_rows_and_values_to_readers(store: Store) -> None:
    blobs = MemoryBlobStore()
    tk = create_test_kernel(texts, store=store, blobs=blobs, inline_limit=LIMIT)
    run_id = run_texts(tk, "x" * 2_000)

    # Readers see values; each stage got the previous one's output as its input.
    run = tk.store.get_run(run_id)
    assert run is not None
    assert run.input == {"text": "x" * 2_000}
    assert run.output == {"text": "x" * 2_000 + "a" * 10 + "b" * 10 + "c" * 10}
    assert tk.store.get_blob(output_key(run_id, "b")) == (
        True,
        {"text": "x" * 2_000 + "a" * 10 + "b" * 10},
    )

    # The rows hold references: the input, three stage outputs; the run's output
    # is its last stage's blob, not a copy.
    raw = store.get_run(run_id)
    assert raw is not None and is_ref(raw.input) and is_ref(raw.output)
    stored = {stage: store.get_blob(output_key(run_id, stage))[1] for stage in "abc"}
    assert all(is_ref(value) for value in stored.values())
    assert raw.output == stored["c"]
    assert blobs.puts == 4 and len(blobs) == 4


def test_values_within_the_limit_stay_inline(store: Store) -> None:
    blobs = MemoryBlobStore()
    tk = create_test_kernel(texts, store=store, blobs=blobs, inline_limit=LIMIT)
    run_id = run_texts(tk, "short")

    raw = store.get_run(run_id)
    assert raw is not None
    assert raw.input == {"text": "short"}
    assert raw.output == {"text": "short" + "a" * 10 + "b" * 10 + "c" * 10}
    assert blobs.puts == 0


def test_the_outbox_and_the_sink_get_the_reference_not_the_value(store: Store) -> None:
    tk = create_test_kernel(texts, store=store, inline_limit=LIMIT)
    run_id = run_texts(tk, "x" * 2_000)

    raw = store.get_run(run_id)
    assert raw is not None
    [completed] = [e for e in tk.store.get_outbox(run_id) if e.event_type == "workflow:completed"]
    assert completed.payload["output"] == raw.output
    [delivered] = [e for e in tk.sink.events if isinstance(e, WorkflowCompleted)]
    assert delivered.output == raw.output and is_ref(delivered.output)


def test_a_value_just_over_the_limit_is_a_blob_and_one_at_it_is_not() -> None:
    # {"text":"..."} is 11 bytes around the text.
    tk = create_test_kernel(texts, inline_limit=LIMIT)
    at_limit = run_texts(tk, "y" * (LIMIT - 11), by=0)
    over = run_texts(tk, "y" * (LIMIT - 10), by=0)
    store = cast(BlobbingStore, tk.store).inner

    assert not is_ref(run_of(store, at_limit).input)
    assert is_ref(run_of(store, over).input)


def test_megabytes_through_three_stages_in_files(tmp_path: Path) -> None:
    # The default limit, 256 KiB: a 2 MB text passes through every stage as a file.
    blobs = FileBlobStore(tmp_path / "blobs")
    tk = create_test_kernel(texts, blobs=blobs)
    text = "é" * 1_000_000  # 2 MB of UTF-8

    run_id = run_texts(tk, text, by=1)

    run = tk.store.get_run(run_id)
    assert run is not None and run.output == {"text": text + "abc"}
    files = sorted(tmp_path.joinpath("blobs").rglob("*"))
    assert len([path for path in files if path.is_file()]) == 4
