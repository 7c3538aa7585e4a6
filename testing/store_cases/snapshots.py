"""Conformance cases for a store whose transactions also offer
:class:`kernel.shell.reads.SnapshotReads`: a run with its stages in one read, and the
check that lets a job's finish decide on what its start left instead of reading it
again. These reads are optional, so these cases are not part of ``StoreConformance``:
a store that offers them mixes ``SnapshotCases`` in beside it::

    class TestMyStore(StoreConformance, SnapshotCases):
        def make_store(self) -> Store: ...
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from attrs import evolve

from kernel.effects import DeleteStage, EnqueueJob, InsertStage, UpdateJob, UpdateRun, UpdateStage
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.shell.reads import SnapshotReads
from kernel.status import JobStatus, Status
from testing.store_cases.base import StoreCase, at, bump, make_job, make_stage


class SnapshotCases(StoreCase):
    """``get_run_with_stages`` and ``unchanged`` (see ``kernel.shell.reads.SnapshotReads``)."""

    @contextmanager
    def snapshots(self) -> Iterator[SnapshotReads]:
        """A committed transaction, as its snapshot reads."""
        with self.store.transaction() as tx:
            assert isinstance(tx, SnapshotReads), f"{tx!r} offers no SnapshotReads"
            yield tx

    def setup_run(self) -> tuple[WorkflowRun, list[WorkflowStage], Job]:
        """run-1 with stages a (RUNNING), b, c (inserted out of order) and a's job, leased."""
        self.add_runs("run-1")
        a = make_stage("run-1", "a", 1, status=Status.RUNNING)
        b, c = make_stage("run-1", "b", 2), make_stage("run-1", "c", 2)
        job = make_job("job-a", status=JobStatus.LEASED, worker_id="w", locked_at=at(1))
        self.apply(InsertStage(c), InsertStage(a), InsertStage(b), EnqueueJob(job))
        run = self.store.get_run("run-1")
        assert run is not None
        return run, self.store.get_stages("run-1"), job

    def unchanged(self, run: WorkflowRun, stages: Sequence[WorkflowStage], job: Job | None) -> bool:
        with self.snapshots() as tx:
            return tx.unchanged(run, stages, job)

    # -- one read of a run and its stages ------------------------------------------

    def test_run_with_stages_is_get_run_and_get_stages_in_one(self) -> None:
        """The same records in the same order (by stage number, then insertion)."""
        run, stages, _ = self.setup_run()
        with self.snapshots() as tx:
            assert tx.get_run_with_stages("run-1") == (run, stages, {})
        assert [stage.stage_id for stage in stages] == ["a", "c", "b"]

    def test_run_with_stages_of_a_run_without_stages_or_of_no_run(self) -> None:
        """A run without stage records comes with an empty list; an unknown id gives
        ``(None, [], {})``."""
        self.add_runs("run-1")
        with self.snapshots() as tx:
            assert tx.get_run_with_stages("run-1", 1) == (self.store.get_run("run-1"), [], {})
            assert tx.get_run_with_stages("missing", 1) == (None, [], {})

    def test_run_with_stages_brings_the_stored_outputs_of_one_group(self) -> None:
        """For each COMPLETED stage of the group asked for, the value its ``output_ref``
        names, if one is stored (JSON null included); nothing of other groups, of
        stages not completed, or for group 0."""
        self.add_runs("run-1")

        def done(stage_id: str, group: int, **changes: Any) -> WorkflowStage:
            ref = f"runs/run-1/stages/{stage_id}/output"
            return make_stage(
                "run-1", stage_id, group, status=Status.COMPLETED, output_ref=ref, **changes
            )

        stages = [
            done("a", 1),
            done("b", 2),
            done("c", 2),
            done("gone", 2),
            make_stage("run-1", "d", 2, status=Status.RUNNING, output_ref="runs/run-1/x"),
        ]
        self.apply(*(InsertStage(stage) for stage in stages))
        for stage_id, value in (("a", 1), ("b", {"n": [2]}), ("c", None)):
            self.store.put_blob(f"runs/run-1/stages/{stage_id}/output", value)
        self.store.put_blob("runs/run-1/x", "not completed")
        with self.snapshots() as tx:
            assert tx.get_run_with_stages("run-1", 2)[2] == {
                "run-1/b": {"n": [2]},
                "run-1/c": None,
            }
            assert tx.get_run_with_stages("run-1", 1)[2] == {"run-1/a": 1}
            assert tx.get_run_with_stages("run-1", 0)[2] == {}
            assert tx.get_run_with_stages("run-1", 2)[1] == self.store.get_stages("run-1")

    # -- unchanged ---------------------------------------------------------------

    def test_records_as_stored_are_unchanged(self) -> None:
        """The run, its stages and the job as read: unchanged, with the job or without."""
        run, stages, job = self.setup_run()
        assert self.unchanged(run, stages, job)
        assert self.unchanged(run, stages, None)

    def test_a_run_moved_since_is_changed(self) -> None:
        """A run updated meanwhile (cancelled, say) is not the run read."""
        run, stages, job = self.setup_run()
        self.apply(UpdateRun(bump(run, status=Status.CANCELLED), expected_version=run.version))
        assert not self.unchanged(run, stages, job)

    def test_a_sibling_moved_since_is_changed(self) -> None:
        """Any stage record of the run counts, not only the job's own."""
        run, stages, job = self.setup_run()
        sibling = stages[2]
        done = bump(sibling, status=Status.COMPLETED)
        self.apply(UpdateStage(done, expected_version=sibling.version))
        assert not self.unchanged(run, stages, job)

    def test_a_stage_added_or_removed_since_is_changed(self) -> None:
        """The stage records must be exactly those given: no more, no fewer."""
        run, stages, job = self.setup_run()
        assert not self.unchanged(run, stages[:2], job)
        self.apply(InsertStage(make_stage("run-1", "d", 3)))
        assert not self.unchanged(run, stages, job)
        self.apply(DeleteStage(stages[2]))
        assert not self.unchanged(run, stages, job)

    def test_a_job_written_or_renewed_since_is_changed(self) -> None:
        """Jobs have no version: any column an update writes counts, the lease time too."""
        run, stages, job = self.setup_run()
        assert self.store.renew_lease("job-a", "w", at(5))
        assert not self.unchanged(run, stages, job)
        renewed = evolve(job, locked_at=at(5))
        assert self.unchanged(run, stages, renewed)
        self.apply(UpdateJob(evolve(renewed, status=JobStatus.QUEUED, worker_id=None)))
        assert not self.unchanged(run, stages, renewed)

    def test_a_job_of_another_run_is_changed(self) -> None:
        """The job must belong to the run checked."""
        run, stages, _ = self.setup_run()
        self.add_runs("run-2")
        other = make_job("job-b", run_id="run-2")
        self.apply(EnqueueJob(other))
        assert not self.unchanged(run, stages, other)

    def test_a_missing_run_is_changed(self) -> None:
        """A run purged or never stored is not the run read."""
        run = self.setup_run()[0]
        assert not self.unchanged(evolve(run, id="missing"), [], None)
