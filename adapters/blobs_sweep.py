"""Which blobs rows still reference, and the sweep that deletes the others."""

from __future__ import annotations

from datetime import datetime, timedelta

from adapters.blobs import ListableBlobStore
from adapters.blobs_values import ref_of
from kernel.decisions.lifecycle import output_key
from kernel.ports import Store, StoreTransaction


def referenced(reads: StoreTransaction | Store, run_id: str) -> set[str]:
    """The blob references the rows of ``run_id`` hold (read without loading them): its
    input and output, its stages' stored outputs and, on a store, its outbox events."""
    run = reads.get_run(run_id)
    if run is None:
        return set()
    found = [run.input, run.output]
    for stage in reads.get_stages(run_id):
        exists, value = reads.get_blob(stage.output_ref or output_key(run_id, stage.stage_id))
        if exists:
            found.append(value)
    get_outbox = getattr(reads, "get_outbox", None)
    if get_outbox is not None:
        found += [event.payload.get("output") for event in get_outbox(run_id)]
    return {ref for ref in map(ref_of, found) if ref is not None}


def sweep(
    store: Store,
    blobs: ListableBlobStore,
    *,
    older_than: timedelta,
    now: datetime,
) -> int:
    """Delete blobs of ``blobs`` written before ``now - older_than`` that no row of
    ``store`` references; returns how many went (``adapters.blobs.sweep`` checks the
    arguments and calls this)."""
    from adapters.blobs_store import BlobbingStore

    inner = store.inner if isinstance(store, BlobbingStore) else store
    cutoff = now - older_than
    by_run: dict[str, set[str]] = {}
    deleted = 0
    for info in blobs.list_blobs("runs/"):
        if info.written_at >= cutoff:
            continue  # may belong to a transaction still open
        parts = info.ref.split("/")
        if len(parts) < 3:
            continue
        run_id = parts[1]
        if run_id not in by_run:
            by_run[run_id] = referenced(inner, run_id)
        live = by_run[run_id]
        owner = "/".join(parts[:-1])
        if parts[2] == "storage" and info.ref not in live:
            exists, value = inner.get_blob(owner)
            if exists and ref_of(value) == info.ref:
                continue
        if info.ref in live:
            continue
        blobs.delete(info.ref)
        deleted += 1
    return deleted
