"""The usage ledger and pending batch cancels in SQLite: rows to records and back, and the
handlers that write their effects (SPEC §11, §12.1).

A ledger row flattens its ``Usage`` into four token columns; its cost is the
``str`` of the Decimal, in a TEXT column, so it reads back exactly as written.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from adapters.sqlite.codec import RecordCodec, parse_time, timestamp
from adapters.sqlite.queries import QUERIES as Q
from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.ai.types import Usage
from kernel.effects import DeleteBatchCancel, InsertBatchCancel, InsertUsage, UpdateBatchCancel

if TYPE_CHECKING:
    from adapters.sqlite.transaction import SqliteTransaction

CANCELS = RecordCodec.of(BatchCancel)


def usage_row(entry: UsageEntry) -> dict[str, Any]:
    """The named parameters of ``insert_usage``."""
    usage = entry.usage
    return {
        "call_id": entry.call_id,
        "workflow_run_id": entry.workflow_run_id,
        "stage_id": entry.stage_id,
        "attempt": entry.attempt,
        "model": entry.model,
        "kind": entry.kind,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cost": str(entry.cost),
        "priced": entry.priced,
        "note": entry.note,
        "recorded_at": timestamp(entry.recorded_at),
    }


def usage_entry(row: dict[str, Any]) -> UsageEntry:
    """The ledger entry of a ``usage`` row (``position`` is ignored)."""
    return UsageEntry(
        call_id=row["call_id"],
        workflow_run_id=row["workflow_run_id"],
        stage_id=row["stage_id"],
        attempt=row["attempt"],
        model=row["model"],
        kind=row["kind"],
        usage=Usage(
            row["input_tokens"],
            row["output_tokens"],
            cached_input_tokens=row["cached_input_tokens"],
            reasoning_tokens=row["reasoning_tokens"],
        ),
        cost=Decimal(row["cost"]),
        priced=bool(row["priced"]),
        recorded_at=parse_time(row["recorded_at"]),
        note=row["note"],
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
