"""The usage ledger and pending provider batch cancels of ``InMemoryStore`` (SPEC §11,
§12.1): their tables, the transaction's loads and effects, and the store's queries, as
mixins of the classes in :mod:`adapters.memory`.

Ledger rows are kept by ``call_id`` in record order (a dict keeps insertion
order); cancels by batch id. Writes go through the transaction's undo log, so
a rollback undoes them with everything else.
"""

from __future__ import annotations

from typing import Protocol

from attrs import define, field

from adapters.memory_signals import (
    SignalScheduleEffect,
    SignalScheduleLoads,
    SignalScheduleQueries,
    SignalScheduleTables,
)
from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.effects import DeleteBatchCancel, InsertBatchCancel, InsertUsage, UpdateBatchCancel

LedgerEffect = InsertUsage | InsertBatchCancel | UpdateBatchCancel | DeleteBatchCancel
"""The effects :meth:`LedgerLoads.apply_ledger` applies itself."""


@define
class LedgerTables:
    """The ledger's tables (``adapters.memory._Tables`` extends this)."""

    usage: dict[str, UsageEntry] = field(factory=dict)  # call id -> row, in record order
    batch_cancels: dict[str, BatchCancel] = field(factory=dict)


class _Tables(SignalScheduleTables, Protocol):
    """What the mixins below read: the ledger's tables and the signals' and schedules'."""

    usage: dict[str, UsageEntry]
    batch_cancels: dict[str, BatchCancel]


def _oldest_first(cancel: BatchCancel) -> tuple[object, str]:
    return cancel.requested_at, cancel.batch_id


class LedgerLoads(SignalScheduleLoads):
    """The ledger part of ``MemoryTransaction``: its loads, and its effects (the signal
    and schedule ones are passed on to :class:`SignalScheduleLoads`)."""

    t: _Tables

    def get_usage_call(self, call_id: str) -> UsageEntry | None:
        return self.t.usage.get(call_id)

    def pending_batch_cancels(self, limit: int) -> list[BatchCancel]:
        return sorted(self.t.batch_cancels.values(), key=_oldest_first)[: max(limit, 0)]

    def apply_ledger(self, effect: LedgerEffect | SignalScheduleEffect) -> None:
        """Apply one ledger, signal or schedule effect through the undo log."""
        t = self.t
        match effect:
            case InsertUsage(entry):
                self._insert(t.usage, entry.call_id, entry, f"usage call {entry.call_id!r}")
            case InsertBatchCancel(cancel):
                self._set(t.batch_cancels, cancel.batch_id, cancel)
            case UpdateBatchCancel(cancel):
                # A cancel another tick cleared meanwhile stays cleared.
                if cancel.batch_id in t.batch_cancels:
                    self._set(t.batch_cancels, cancel.batch_id, cancel)
            case DeleteBatchCancel(batch_id):
                self._pop(t.batch_cancels, batch_id)
            case _:  # signals and schedules (checked exhaustive there)
                self.apply_signal_schedule(effect)


class LedgerQueries(SignalScheduleQueries):
    """The ledger queries of ``InMemoryStore`` (each its own read)."""

    _tables: _Tables

    def get_usage(self, run_id: str) -> list[UsageEntry]:
        with self._lock:
            rows = list(self._tables.usage.values())
        return [entry for entry in rows if entry.workflow_run_id == run_id]

    def get_batch_cancels(self) -> list[BatchCancel]:
        with self._lock:
            cancels = list(self._tables.batch_cancels.values())
        return sorted(cancels, key=_oldest_first)
