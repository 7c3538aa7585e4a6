"""A finish's check sent with its writes rather than before them.

A job's finish decides on the records its start read, once the store confirms
them current (``unchanged``): the job exactly as leased, its run at the same
version, the run's stage records at the same versions. Asked first, that check
is a round trip of its own before the finish's writes can go out. Here the
store answers "unchanged" at once and sends the check as the first statements
of the writes' round trip (:meth:`~adapters.postgres.pipeline.RoundTrips.expect`):
the same locks in the same order, then ``expect_ids`` (migration 0010) fails
the transaction unless every record is as the finish assumed. Nothing after a
failed check runs; the store raises ``StaleVersionError``, the kernel rolls the
transaction back and runs the finish again, and this time the store checks
first (:class:`Doubts`), as before, so a finish whose records did change is
decided on what they are now.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from adapters.postgres.queries import QUERIES
from adapters.postgres.rows import Row, params, rows_json
from kernel.records import Job, WorkflowRun, WorkflowStage

DOUBTS_KEPT = 10_000
"""How many doubted jobs :class:`Doubts` keeps at most (each is forgotten at its next
check; one that never comes back, such as a job another worker finished, stays until
this many pile up, and then all are forgotten: their next finish is optimistic again)."""


class Doubts:
    """The jobs whose last optimistic check failed: their next finish checks first.
    Shared by a store's transactions (any thread)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def doubted(self, job_ids: Sequence[str]) -> bool:
        """Whether any of ``job_ids`` is doubted; forgets them (the caller checks first)."""
        with self._lock:
            found = not self._ids.isdisjoint(job_ids)
            if found:
                self._ids.difference_update(job_ids)
            return found

    def doubt(self, job_ids: Sequence[str]) -> None:
        with self._lock:
            if len(self._ids) >= DOUBTS_KEPT:
                self._ids.clear()
            self._ids.update(job_ids)


def unchanged_checks(
    items: Sequence[tuple[WorkflowRun, Sequence[WorkflowStage], Job]],
) -> list[tuple[bytes, Row]]:
    """The two statements that lock each job and its run, in the order given, and fail
    unless each job, its run's version and its run's stage records are as given:
    ``expect_jobs_and_runs`` and then ``expect_runs_stages`` (``batched.sql``)."""
    jobs = [{**params(job), "run_version": run.version} for run, _, job in items]
    stages = [
        {"run_id": run.id, "stages": [[stage.id, stage.version] for stage in run_stages]}
        for run, run_stages, _ in items
    ]
    return [
        (QUERIES["expect_jobs_and_runs"], {"rows": rows_json(jobs), "count": len(jobs)}),
        (QUERIES["expect_runs_stages"], {"rows": rows_json(stages), "count": len(stages)}),
    ]
