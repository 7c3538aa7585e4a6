"""Retention in SQLite (``runs.purge``, SPEC §16): the read of the runs that may be purged
and the handler of :class:`~kernel.effects.PurgeRun`, with their SQL in ``purge.sql``.

A purged run leaves no row behind: stages, jobs, outbox events, log lines,
usage rows, signals and blobs under ``runs/<run id>/`` go with it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from attrs import fields, frozen

from adapters.sqlfiles import read_queries
from adapters.sqlite.codec import dump_json, fetch_dicts, timestamp
from kernel.effects import PurgeRun
from kernel.errors import StaleVersionError
from kernel.status import Status

if TYPE_CHECKING:
    from adapters.sqlite.transaction import SqliteTransaction


@frozen
class PurgeQueries:
    """One attribute per ``-- name:`` block of ``purge.sql``."""

    purgeable_runs: str
    purge_run: str
    purge_stages: str
    purge_jobs: str
    purge_outbox: str
    purge_logs: str
    purge_usage: str
    purge_signals: str
    purge_blobs: str


Q = PurgeQueries(
    **read_queries(
        "adapters.sqlite",
        expected=[field.name for field in fields(PurgeQueries)],
        filename="purge.sql",
    )
)

OWNED = (Q.purge_stages, Q.purge_jobs, Q.purge_outbox, Q.purge_logs, Q.purge_usage, Q.purge_signals)
"""The statements deleting a run's rows in the tables keyed by ``workflow_run_id``."""


def blob_range(run_id: str) -> dict[str, str]:
    """The ``purge_blobs`` bounds: every key that starts with ``runs/<run id>/``."""
    return {"low": f"runs/{run_id}/", "high": f"runs/{run_id}0"}


def purgeable_rows(
    tx: SqliteTransaction, finished_before: datetime, statuses: Collection[Status], limit: int
) -> list[dict[str, Any]]:
    """The rows of the runs ``runs.purge`` may delete (see ``purge.sql``)."""
    params = {
        "statuses": dump_json(sorted(str(status) for status in statuses)),
        "finished_before": timestamp(finished_before),
        "limit": max(limit, 0),
    }
    with tx.errors:
        return fetch_dicts(tx.conn.execute(Q.purgeable_runs, params))


def purge_runs(tx: SqliteTransaction, effects: list[PurgeRun]) -> None:
    """Delete each run (at the version its decision read) and every row it owns."""
    for effect in effects:
        run = {"id": effect.run_id, "expected_version": effect.expected_version}
        if tx.conn.execute(Q.purge_run, run).rowcount != 1:
            raise StaleVersionError("run", effect.run_id, effect.expected_version)
        owner = {"id": effect.run_id}
        for statement in OWNED:
            tx.conn.execute(statement, owner)
        tx.conn.execute(Q.purge_blobs, blob_range(effect.run_id))
