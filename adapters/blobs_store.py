"""``BlobbingStore``: a store whose large values live in a :class:`~kernel.ports.BlobStore`.

``adapters.create_kernel(..., blobs=...)`` and ``testing.create_test_kernel(...,
blobs=...)`` wrap the store in one; ``kernel.store`` and ``tk.store`` are the wrapper.

Writing: a transaction's ``apply`` looks at the values its effects carry (a run's
input and output, stored stage outputs and ``ctx.storage`` values, the output of
``workflow:completed``); one whose JSON exceeds ``inline_limit`` is written to the
blob store before the effects reach the database, and the row keeps
``{"$blob": ref}``. A value read and written back in one transaction keeps its
reference (the run's output is its last stage's blob). If the transaction rolls
back, the blobs it wrote are deleted; a crash between the write and the commit
leaves blobs no row references, which :func:`adapters.blobs.sweep` deletes.

Reading: ``get_run``, ``list_runs`` and ``get_blob`` (the store's and a
transaction's) load referenced blobs, so decisions, stage inputs and callers see
the value. Outbox events keep the reference: a sink gets ``{"$blob": ref}``.

Purging: the blobs of runs a committed ``runs.purge`` deleted are deleted after
the commit (a purge that rolls back keeps them). ``run.rerunFrom`` leaves the
blobs of the outputs it drops to :func:`adapters.blobs.sweep`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from attrs import Factory, frozen

from adapters.blobs import ListableBlobStore
from adapters.blobs_sweep import referenced
from adapters.blobs_values import DEFAULT_INLINE_LIMIT, Offloader, check_inline_limit, describe
from adapters.blobs_values import ref_of as ref_of
from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.copying import evolve
from kernel.dispatch import Kernel
from kernel.effects import (
    AppendOutbox,
    InsertRun,
    PurgeRun,
    PutBlob,
    StoreEffect,
    UpdateRun,
)
from kernel.events import WorkflowCompleted
from kernel.ports import BlobStore, Store, StoreTransaction
from kernel.records import (
    IdempotencyRecord,
    Job,
    Json,
    LogEntry,
    OutboxEvent,
    SignalRecord,
    WorkflowRun,
    WorkflowStage,
)
from kernel.schedules import ScheduleRecord
from kernel.status import Status

log = logging.getLogger(__name__)


def _offloadable(key: str) -> bool:
    """Stored values of runs (stage outputs, ``ctx.storage``) may become blobs."""
    return key.startswith("runs/")


def resolve_run(run: WorkflowRun | None, values: Offloader) -> WorkflowRun | None:
    """``run`` with its input and output loaded from their blobs."""
    if run is None or (ref_of(run.input) is None and ref_of(run.output) is None):
        return run
    return evolve(
        run,
        input=values.resolve(run.input, f"the input of run {run.id!r}"),
        output=values.resolve(run.output, f"the output of run {run.id!r}"),
    )


@frozen
class _Purged:
    """The runs a transaction purged and the references their rows held."""

    runs: list[str] = Factory(list)
    refs: list[str] = Factory(list)


class BlobbingTransaction:
    """A store transaction that writes large values as blobs and loads references."""

    def __init__(self, tx: StoreTransaction, values: Offloader, purged: _Purged) -> None:
        self._tx = tx
        self._values = values
        self._purged = purged

    def __getattr__(self, name: str) -> Any:
        # Reads a store adds later pass through unchanged.
        if name.startswith("__") or name == "_tx":
            raise AttributeError(name)
        return getattr(self._tx, name)

    def get_run(self, run_id: str) -> WorkflowRun | None:
        return resolve_run(self._tx.get_run(run_id), self._values)

    def get_blob(self, key: str) -> tuple[bool, Json]:
        found, value = self._tx.get_blob(key)
        return found, self._values.resolve(value, describe(key)) if found else value

    def apply(self, effects: Sequence[StoreEffect]) -> None:
        self._tx.apply([self._offload(effect) for effect in effects])

    def _offload(self, effect: StoreEffect) -> StoreEffect:
        values = self._values
        match effect:
            case InsertRun(run) | UpdateRun(run):
                prefix = f"runs/{run.id}/"
                new_input = values.offload(run.input, prefix + "input/")
                new_output = values.offload(run.output, prefix + "output/")
                if new_input is not run.input or new_output is not run.output:
                    return evolve(effect, run=evolve(run, input=new_input, output=new_output))
            case PutBlob(key, value) if _offloadable(key):
                stored = values.offload(value, key + "/")
                if stored is not value:
                    return PutBlob(key, stored)
            case AppendOutbox(event=WorkflowCompleted() as event):
                output = values.offload(event.output, f"runs/{event.workflow_run_id}/output/")
                if output is not event.output:
                    return evolve(effect, event=evolve(event, output=output))
            case PurgeRun(run_id):
                self._purged.runs.append(run_id)
                if not isinstance(values.blobs, ListableBlobStore):
                    # Without a listing, the blobs to delete are the ones its rows name.
                    self._purged.refs.extend(referenced(self._tx, run_id))
        return effect

    # -- everything else as the store's transaction does it ----------------------

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        return self._tx.get_stages(run_id)

    def get_job(self, job_id: str) -> Job | None:
        return self._tx.get_job(job_id)

    def get_jobs(self, run_id: str) -> list[Job]:
        return self._tx.get_jobs(run_id)

    def get_idempotency(self, key: str, command_type: str) -> IdempotencyRecord | None:
        return self._tx.get_idempotency(key, command_type)

    def acquire_idempotency(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        return self._tx.acquire_idempotency(record)

    def pending_runs(
        self,
        limit: int,
        workflow_ids: Collection[str] | None = None,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> list[WorkflowRun]:
        # Claims only move runs on: their input stays a reference, written back as is.
        return self._tx.pending_runs(limit, workflow_ids, versions=versions)

    def lease_next_job(
        self,
        worker_id: str,
        now: datetime,
        workflow_ids: Collection[str] | None = None,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> Job | None:
        return self._tx.lease_next_job(worker_id, now, workflow_ids, versions=versions)

    def stale_jobs(self, leased_before: datetime, limit: int) -> list[Job]:
        return self._tx.stale_jobs(leased_before, limit)

    def due_suspended_stages(self, now: datetime, limit: int) -> list[WorkflowStage]:
        return self._tx.due_suspended_stages(now, limit)

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxEvent]:
        return self._tx.claim_outbox(now, limit, lease)

    def dead_letters(self, limit: int) -> list[OutboxEvent]:
        return self._tx.dead_letters(limit)

    def buffered_signals(self, run_id: str) -> list[SignalRecord]:
        return self._tx.buffered_signals(run_id)

    def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        return self._tx.get_schedule(schedule_id)

    def due_schedules(
        self, now: datetime, limit: int, workflow_ids: Collection[str] | None = None
    ) -> list[ScheduleRecord]:
        return self._tx.due_schedules(now, limit, workflow_ids)

    def get_usage_call(self, call_id: str) -> UsageEntry | None:
        return self._tx.get_usage_call(call_id)

    def pending_batch_cancels(self, limit: int) -> list[BatchCancel]:
        return self._tx.pending_batch_cancels(limit)

    def purgeable_runs(
        self, finished_before: datetime, statuses: Collection[Status], limit: int
    ) -> list[WorkflowRun]:
        return self._tx.purgeable_runs(finished_before, statuses, limit)


class BlobbingStore:
    """``store`` with values over ``inline_limit`` bytes of JSON kept in ``blobs``.

    Every method of the wrapped store is available; reads load references (see
    the module docs). Hosts take it like any store: pass ``kernel.store``.

    Raises:
        ValueError: ``inline_limit`` is not a positive int.
    """

    def __init__(
        self, store: Store, blobs: BlobStore, inline_limit: int = DEFAULT_INLINE_LIMIT
    ) -> None:
        self.inner = store
        """The wrapped store, whose reads return ``{"$blob": ref}`` markers as stored."""
        self.blobs = blobs
        self.inline_limit = check_inline_limit(inline_limit)

    def __getattr__(self, name: str) -> Any:
        # Optional capabilities (wait_for_jobs, subscribe_work) and store extras pass
        # through, so isinstance checks against them see the wrapped store's.
        if name.startswith("__") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _values(self) -> Offloader:
        return Offloader(self.blobs, self.inline_limit)

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """The wrapped store's transaction; blobs it wrote are deleted if it rolls back,
        purged runs' blobs after it commits."""
        values = self._values()
        purged = _Purged()
        body_done = False
        try:
            with self.inner.transaction() as tx:
                yield BlobbingTransaction(tx, values, purged)
                body_done = True
        except BaseException:
            # A failed commit may still have committed (a lost connection): its
            # blobs are left to sweep() rather than risk deleting referenced ones.
            if not body_done:
                self._delete(values.written)
            raise
        if purged.runs:
            self._delete_purged(purged)

    def _delete(self, refs: Sequence[str]) -> None:
        for ref in refs:
            try:
                self.blobs.delete(ref)
            except Exception:  # the sweep deletes what is left
                log.warning("could not delete blob %r", ref, exc_info=True)

    def _delete_purged(self, purged: _Purged) -> None:
        refs = list(purged.refs)
        if isinstance(self.blobs, ListableBlobStore):
            for run_id in purged.runs:
                try:
                    refs += [info.ref for info in self.blobs.list_blobs(f"runs/{run_id}/")]
                except Exception:
                    log.warning("could not list the blobs of run %r", run_id, exc_info=True)
        self._delete(refs)

    # -- reads that load --------------------------------------------------------------

    def get_run(self, run_id: str) -> WorkflowRun | None:
        return resolve_run(self.inner.get_run(run_id), self._values())

    def list_runs(
        self,
        status: Status | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        *,
        before: str | None = None,
    ) -> list[WorkflowRun]:
        values = self._values()
        runs = self.inner.list_runs(status, workflow_id, limit, before=before)
        return [run for run in (resolve_run(run, values) for run in runs) if run is not None]

    def get_blob(self, key: str) -> tuple[bool, Json]:
        found, value = self.inner.get_blob(key)
        return found, self._values().resolve(value, describe(key)) if found else value

    def put_blob(self, key: str, value: Json) -> None:
        values = self._values()
        stored = values.offload(value, key + "/") if _offloadable(key) else value
        try:
            self.inner.put_blob(key, stored)
        except BaseException:
            self._delete(values.written)
            raise

    # -- the rest as the wrapped store does it --------------------------------------

    def delete_blob(self, key: str) -> None:
        self.inner.delete_blob(key)  # a blob it referenced is left to sweep()

    def renew_lease(self, job_id: str, worker_id: str, now: datetime) -> bool:
        return self.inner.renew_lease(job_id, worker_id, now)

    def append_log(self, entry: LogEntry) -> None:
        self.inner.append_log(entry)

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        return self.inner.get_stages(run_id)

    def get_logs(self, run_id: str) -> list[LogEntry]:
        return self.inner.get_logs(run_id)

    def get_outbox(self, run_id: str | None = None) -> list[OutboxEvent]:
        return self.inner.get_outbox(run_id)

    def get_jobs(self, run_id: str) -> list[Job]:
        return self.inner.get_jobs(run_id)

    def get_signals(self, run_id: str) -> list[SignalRecord]:
        return self.inner.get_signals(run_id)

    def get_usage(self, run_id: str) -> list[UsageEntry]:
        return self.inner.get_usage(run_id)

    def get_batch_cancels(self) -> list[BatchCancel]:
        return self.inner.get_batch_cancels()

    def get_schedules(self) -> list[ScheduleRecord]:
        return self.inner.get_schedules()

    def close(self) -> None:
        self.inner.close()


def with_blobs(store: Store, blobs: BlobStore | None, inline_limit: int | None) -> Store:
    """``store`` as ``create_kernel(..., blobs=, inline_limit=)`` uses it: wrapped in a
    :class:`BlobbingStore` when ``blobs`` is given (``inline_limit`` defaulting to
    256 KiB), else unchanged, every value inline.

    Raises:
        ValueError: ``inline_limit`` is not a positive int, or is given without ``blobs``.
    """
    if inline_limit is not None:
        check_inline_limit(inline_limit)
    if blobs is None:
        if inline_limit is not None:
            raise ValueError(
                f"inline_limit: {inline_limit!r} needs blobs= (a BlobStore such as "
                "adapters.blobs.FileBlobStore(directory)) to put larger values in"
            )
        return store
    return BlobbingStore(
        store, blobs, DEFAULT_INLINE_LIMIT if inline_limit is None else inline_limit
    )


def kernels_store(kernel: Kernel, store: Store) -> Store:
    """``kernel.store`` when it is a :class:`BlobbingStore` wrapping ``store``, else
    ``store``: a host given the raw store of a kernel with ``blobs=`` reads values
    loaded, as the kernel does."""
    outer = kernel.store
    if isinstance(outer, BlobbingStore) and outer.inner is store:
        return outer
    return store
