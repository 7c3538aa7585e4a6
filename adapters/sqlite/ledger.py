"""The usage ledger and pending batch cancels in SQLite: rows to records and back, and the
handlers that write their effects (SPEC §11, §12.1).

A ledger row flattens its ``Usage`` into four token columns; its cost is the
``str`` of the Decimal, in a TEXT column, so it reads back exactly as written.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from adapters.columns import usage_columns
from adapters.columns import usage_entry as ledger_entry
from adapters.sqlite.codec import RecordCodec, parse_time, timestamp
from adapters.sqlite.queries import QUERIES as Q
from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.effects import DeleteBatchCancel, InsertBatchCancel, InsertUsage, UpdateBatchCancel

if TYPE_CHECKING:
    from adapters.sqlite.transaction import SqliteTransaction

CANCELS = RecordCodec.of(BatchCancel)


def usage_row(entry: UsageEntry) -> dict[str, Any]:
    """The named parameters of ``insert_usage``: the cost as its ``str``, the time as text."""
    return {
        **usage_columns(entry),
        "cost": str(entry.cost),
        "recorded_at": timestamp(entry.recorded_at),
    }


def usage_entry(row: dict[str, Any]) -> UsageEntry:
    """The ledger entry of a ``usage`` row (``position`` is ignored)."""
    return ledger_entry(
        row,
        cost=Decimal(row["cost"]),
        priced=bool(row["priced"]),
        recorded_at=parse_time(row["recorded_at"]),
    )


def _cancel_rows(tx: SqliteTransaction, query: str, cancels: list[BatchCancel]) -> None:
    tx.conn.executemany(query, [CANCELS.encode(cancel) for cancel in cancels])


def insert_usage(tx: SqliteTransaction, effects: list[InsertUsage]) -> None:
    tx.conn.executemany(Q.insert_usage, [usage_row(effect.entry) for effect in effects])


def insert_batch_cancels(tx: SqliteTransaction, effects: list[InsertBatchCancel]) -> None:
    _cancel_rows(tx, Q.insert_batch_cancel, [effect.cancel for effect in effects])


def update_batch_cancels(tx: SqliteTransaction, effects: list[UpdateBatchCancel]) -> None:
    _cancel_rows(tx, Q.update_batch_cancel, [effect.cancel for effect in effects])


def delete_batch_cancels(tx: SqliteTransaction, effects: list[DeleteBatchCancel]) -> None:
    tx.conn.executemany(
        Q.delete_batch_cancel, [{"batch_id": effect.batch_id} for effect in effects]
    )
