"""What a PostgreSQL transaction read ahead of the kernel's asking.

A transaction's reads of a run come in a known order: the run (locked), then
its stage records, then the stored outputs of some of them; a lease is
followed by the leased job's run, and a job's finish by the job and the run.
``PostgresTransaction`` sends such reads together, in one round trip, and
keeps what came back here until the kernel asks for it. Each of these reads
was made after the run's lock was granted, and nothing else changes a run's
records while its lock is held, so the answer is what a read made when asked
would return. An ``apply`` changes records: everything kept is forgotten then.
"""

from __future__ import annotations

from adapters.postgres.rows import Row
from kernel.records import Json

_STORED = ("stored_input", "stored_found", "stored_value")
"""The columns ``get_stages_with_outputs`` and ``leased_stages`` add to a stage row."""


def plain(rows: list[Row]) -> list[Row]:
    """Stage rows without the columns :data:`_STORED`."""
    for row in rows:
        for name in _STORED:
            del row[name]
    return rows


class ReadAhead:
    """Rows read ahead in one transaction, by what the kernel will ask for."""

    def __init__(self) -> None:
        self.runs: dict[str, Row | None] = {}
        """Run rows (locked), by id; ``None``: no such run."""
        self.stages: dict[str, list[Row]] = {}
        """Stage rows (their run locked), by run id."""
        self.outputs: dict[str, tuple[int, dict[str, Json]]] = {}
        """By run id: an execution group, and the stored outputs of its COMPLETED
        stages by stage record id (those with nothing stored left out)."""
        self.jobs: dict[str, Row | None] = {}
        """Job rows (locked), by id; ``None``: no such job."""
        self.blobs: dict[str, tuple[bool, Json]] = {}
        """Stored values as ``get_blob`` returns them, by key."""

    def forget(self) -> None:
        self.runs.clear()
        self.stages.clear()
        self.outputs.clear()
        self.jobs.clear()
        self.blobs.clear()

    def keep_run(self, run_id: str, rows: list[Row]) -> None:
        self.runs[run_id] = rows[0] if rows else None

    def keep_stages(self, run_id: str, rows: list[Row], group: int | None = None) -> None:
        """Keep a run's stage rows; with ``group``, they carry the stored outputs of that
        execution group's COMPLETED stages (the columns :data:`_STORED`), kept too."""
        self.stages[run_id] = rows
        if group is None:
            return
        outputs: dict[str, Json] = {}
        for row in rows:
            wanted, found, value = (row.pop(name) for name in _STORED)
            if not wanted:
                continue
            if found:
                outputs[row["id"]] = value
            if row["output_ref"] is not None:
                self.blobs[row["output_ref"]] = (True, value) if found else (False, None)
        self.outputs[run_id] = (group, outputs)

    def outputs_of(self, run_id: str, group: int) -> dict[str, Json] | None:
        """The stored outputs of ``group`` read ahead for the run, if they were."""
        kept = self.outputs.get(run_id)
        return dict(kept[1]) if kept is not None and kept[0] == group else None
