"""Listing runs a page at a time: ``list_runs(..., before=last_run_id)``."""

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from adapters.sqlite import SqliteStore
from kernel.effects import InsertRun
from kernel.records import WorkflowRun
from kernel.status import Status


def fill(store: SqliteStore) -> None:
    """Seven runs of two workflows, created a second apart (run-7 is the newest)."""
    with store.transaction() as tx:
        tx.apply(
            [
                InsertRun(
                    WorkflowRun(
                        id=f"run-{n}",
                        workflow_id="invoices" if n % 2 else "reports",
                        workflow_name="Example",
                        status=Status.FAILED if n in (2, 5) else Status.COMPLETED,
                        input={},
                        created_at=datetime(2024, 1, 1, 0, 0, n, tzinfo=UTC),
                    )
                )
                for n in range(1, 8)
            ]
        )


def pages_example(store: SqliteStore) -> None:
    # --8<-- [start:pages]
    first = store.list_runs(limit=3)  # the newest three
    assert [run.id for run in first] == ["run-7", "run-6", "run-5"]
    second = store.list_runs(limit=3, before=first[-1].id)  # the next three
    assert [run.id for run in second] == ["run-4", "run-3", "run-2"]

    failed = store.list_runs(status=Status.FAILED, limit=3)  # filters page the same way
    assert [run.id for run in failed] == ["run-5", "run-2"]
    older = store.list_runs(workflow_id="invoices", before="run-4")  # any run id is a place
    assert [run.id for run in older] == ["run-3", "run-1"]
    assert store.list_runs(before="no-such-run") == []
    # --8<-- [end:pages]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "runs.db")
        try:
            fill(store)
            pages_example(store)
        finally:
            store.close()


if __name__ == "__main__":
    main()
