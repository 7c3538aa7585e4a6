"""A job's finish's check that its records are current: sent with its writes, or
asked first.

A job's finish decides on the records its start read, once the store confirms
them current (``unchanged``): the job exactly as leased, its run at the same
version, the run's stage records at the same versions. Asked first, that check
is a round trip of its own before the finish's writes can go out
(``lock_jobs_and_runs`` and ``get_runs_stages``, whose rows the transaction
keeps for the reads that follow). Usually the store answers "unchanged" at
once and sends the check as the first statements of the writes' round trip
(:meth:`~adapters.postgres.pipeline.RoundTrips.expect`): the same locks in the
same order, then ``expect_ids`` (migration 0010) fails the transaction unless
every record is as the finish assumed. Nothing after a failed check runs; the
store raises ``StaleVersionError``, the kernel rolls the transaction back and
runs the finish again, and this time the store asks first (:class:`Doubts`),
so a finish whose records did change is decided on what they are now.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

from adapters.postgres.ahead import ReadAhead
from adapters.postgres.pipeline import RoundTrips
from adapters.postgres.queries import QUERIES
from adapters.postgres.rows import Row, params, record, rows_json
from kernel.errors import KernelError, StaleVersionError
from kernel.records import Job, WorkflowRun, WorkflowStage

Item = tuple[WorkflowRun, Sequence[WorkflowStage], Job | None]
"""What a finish asks about: the run, its stage records and the job, as its start
read them (no job: a run and its stages only)."""

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


def run_reads(run_id: str, group: int) -> list[tuple[bytes, Row]]:
    """The queries that lock and read a run and read its stage records, with the stored
    outputs of execution group ``group`` (none for 0)."""
    values = {"id": run_id, "workflow_run_id": run_id, "group": group}
    stages = QUERIES["get_stages_with_outputs" if group else "get_stages"]
    return [(QUERIES["lock_run"], values), (stages, values)]


class FinishChecks:
    """``unchanged`` for one transaction: its round trips, what it read ahead, and the
    store's :class:`Doubts` (``None``: always ask first)."""

    def __init__(self, trips: RoundTrips, ahead: ReadAhead, doubts: Doubts | None) -> None:
        self._trips = trips
        self._ahead = ahead
        self._doubts = doubts

    def _later(self, items: Sequence[Item], *, applied: bool) -> bool:
        """Whether to answer "unchanged" for every item now and check with the next
        round trip: where every item has a job, none was doubted by a failed check
        before, and the transaction has ``applied`` nothing yet (the check goes out
        before what it applies: the second finish of two jobs of one run in one
        transaction must see the first's writes)."""
        doubts = self._doubts
        held = [(run, stages, job) for run, stages, job in items if job is not None]
        if doubts is None or applied or not held or len(held) < len(items) or self._trips.expecting:
            return False
        job_ids = [job.id for _, _, job in held]
        if doubts.doubted(job_ids):
            return False
        run = held[0][0]

        def unmet() -> KernelError:
            doubts.doubt(job_ids)
            return StaleVersionError("run", run.id, run.version)

        self._trips.expect(unchanged_checks(held), unmet)
        return True

    def unchanged_many(self, items: Sequence[Item], *, applied: bool) -> list[bool]:
        """Whether each ``(run, stages, job)`` (distinct runs) is unchanged since its
        start read it: ``True`` for all at once where :meth:`_later` may check them
        with the next round trip; else asked now, all in one round trip, locking in
        the order given (the shell gives run id order). Each run of consecutive items
        with a job is then checked with two statements however long it is:
        ``lock_jobs_and_runs`` locks each job and then its run, pair after pair, and
        ``get_runs_stages`` reads the runs' stages. An item without a job reads its
        run (locked) and stages, unless they were read ahead."""
        if self._later(items, applied=applied):
            return [True] * len(items)
        ahead = self._ahead
        parts: list[list[int]] = []
        """Indexes of the items each pair of queries answers: consecutive items with a
        job, or one item without."""
        for index, (run, _, job) in enumerate(items):
            if job is None:
                if run.id not in ahead.runs:
                    parts.append([index])
            elif parts and parts[-1][-1] == index - 1 and items[index - 1][2] is not None:
                parts[-1].append(index)
            else:
                parts.append([index])
        queries: list[tuple[bytes, Row]] = []
        for part in parts:
            pairs = [(items[i][0].id, items[i][2]) for i in part]
            if pairs[0][1] is None:
                queries += run_reads(pairs[0][0], 0)
                continue
            rows = [{"id": job.id, "run_id": run_id} for run_id, job in pairs if job is not None]
            queries += [
                (QUERIES["lock_jobs_and_runs"], {"rows": rows_json(rows), "count": len(rows)}),
                (QUERIES["get_runs_stages"], {"run_ids": json.dumps([r for r, _ in pairs])}),
            ]
        cursors = iter(self._trips.send(queries, "run query lock_jobs_and_runs") if queries else [])
        versions: dict[int, int | None] = {}
        """The run's version for each item whose job is still exactly as given."""
        for part in parts:
            first, stage_rows = next(cursors).fetchall(), next(cursors).fetchall()
            run_ids = [items[i][0].id for i in part]
            if items[part[0]][2] is None:
                ahead.keep_run(run_ids[0], first)
                ahead.keep_stages(run_ids[0], stage_rows)
                continue
            by_run: dict[str, list[Row]] = {run_id: [] for run_id in run_ids}
            for row in stage_rows:
                by_run[row["workflow_run_id"]].append(row)
            for index, run_id, row in zip(part, run_ids, first, strict=True):
                job = items[index][2]
                assert job is not None
                version = row.pop("run__version")
                found = row if row["id"] is not None else None
                ahead.jobs[job.id] = found
                ahead.keep_stages(run_id, by_run[run_id])
                if found is not None and record(found, Job) == job:
                    versions[index] = version
        answers = []
        for index, (run, stages, job) in enumerate(items):
            if job is None:
                known = ahead.runs[run.id]
                current = known["version"] if known is not None else None
            elif index in versions:
                current = versions[index]
            else:
                answers.append(False)  # the job is gone or changed
                continue
            answers.append(
                current == run.version
                and [(row["id"], row["version"]) for row in ahead.stages[run.id]]
                == [(stage.id, stage.version) for stage in stages]
            )
        return answers
