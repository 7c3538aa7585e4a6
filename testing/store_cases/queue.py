"""Conformance cases: stage records, pending runs, the job queue and its leases."""

from __future__ import annotations

from attrs import evolve

from kernel.effects import DeleteStage, EnqueueJob, InsertRun, InsertStage, UpdateJob, UpdateRun
from kernel.status import JobStatus, Status
from testing.store_cases.base import StoreCase, at, bump, make_job, make_run, make_stage


class QueueCases(StoreCase):
    """Runs, jobs and suspended stages offered to a transaction; leases (SPEC §5.2, §5.7, §5.8)."""

    # -- stages ------------------------------------------------------------

    def test_get_stages_returns_stage_number_order(self) -> None:
        """Stages come back by stage number, whatever the insertion order."""
        self.add_runs("run-1")
        self.apply(
            InsertStage(make_stage("run-1", "c", 3)),
            InsertStage(make_stage("run-1", "a", 1)),
            InsertStage(make_stage("run-1", "b", 2)),
        )
        assert [stage.stage_id for stage in self.store.get_stages("run-1")] == ["a", "b", "c"]

    def test_delete_stage_removes_only_that_stage(self) -> None:
        """``DeleteStage`` removes one record; its stage id can be inserted again."""
        self.add_runs("run-1")
        a, b = make_stage("run-1", "a", 1), make_stage("run-1", "b", 2)
        self.apply(InsertStage(a), InsertStage(b))
        self.apply(DeleteStage(b))
        assert self.store.get_stages("run-1") == [a]
        self.apply(InsertStage(evolve(b, id="run-1/b#2")))
        assert [s.id for s in self.store.get_stages("run-1")] == ["run-1/a", "run-1/b#2"]

    def test_due_suspended_stages_are_returned_earliest_first(self) -> None:
        """Suspended stages whose poll time is at or before now come back earliest first."""
        self.add_runs("run-1")
        polls = {"a": 30, "b": 10, "c": 20, "d": 21}
        suspended = [
            make_stage("run-1", sid, n, status=Status.SUSPENDED, next_poll_at=at(seconds))
            for n, (sid, seconds) in enumerate(polls.items(), start=1)
        ]
        self.apply(*(InsertStage(stage) for stage in suspended))
        with self.store.transaction() as tx:
            due = tx.due_suspended_stages(at(20), limit=10)
        assert [stage.stage_id for stage in due] == ["b", "c"]

    def test_due_suspended_stages_skips_other_statuses_and_respects_limit(self) -> None:
        """Only SUSPENDED stages are due, at most ``limit`` of them."""
        self.add_runs("run-1")
        self.apply(
            InsertStage(make_stage("run-1", "a", 1, status=Status.RUNNING, next_poll_at=at(1))),
            InsertStage(make_stage("run-1", "b", 2, status=Status.SUSPENDED, next_poll_at=at(2))),
            InsertStage(make_stage("run-1", "c", 3, status=Status.SUSPENDED, next_poll_at=at(3))),
        )
        with self.store.transaction() as tx:
            assert [s.stage_id for s in tx.due_suspended_stages(at(9), limit=1)] == ["b"]

    # -- pending runs ------------------------------------------------------

    def test_pending_runs_come_by_priority_then_age(self) -> None:
        """Higher priority first; within a priority, the oldest first."""
        self.apply(
            InsertRun(make_run("old-low", created=0, priority=1)),
            InsertRun(make_run("new-high", created=9, priority=9)),
            InsertRun(make_run("new-mid", created=8)),
            InsertRun(make_run("old-mid", created=2)),
        )
        with self.store.transaction() as tx:
            runs = tx.pending_runs(limit=10)
        assert [run.id for run in runs] == ["new-high", "old-mid", "new-mid", "old-low"]

    def test_pending_runs_skips_other_statuses_and_respects_limit(self) -> None:
        """Only PENDING runs are offered, at most ``limit`` of them."""
        self.apply(
            InsertRun(make_run("running", status=Status.RUNNING)),
            InsertRun(make_run("a", created=1)),
            InsertRun(make_run("b", created=2)),
        )
        with self.store.transaction() as tx:
            assert [run.id for run in tx.pending_runs(limit=1)] == ["a"]

    def test_pending_runs_of_other_workflows_are_left_alone(self) -> None:
        """With ``workflow_ids``, only runs of those workflows come, in the usual order;
        ``None`` is every workflow and an empty collection none (SPEC §19)."""
        self.apply(
            InsertRun(make_run("a-old", created=0, workflow_id="a")),
            InsertRun(make_run("b-high", created=1, workflow_id="b", priority=9)),
            InsertRun(make_run("c-new", created=2, workflow_id="c")),
            InsertRun(make_run("a-new", created=3, workflow_id="a")),
        )
        with self.store.transaction() as tx:
            assert [r.id for r in tx.pending_runs(10, ["a", "c"])] == ["a-old", "c-new", "a-new"]
            assert [r.id for r in tx.pending_runs(1, frozenset({"a", "c"}))] == ["a-old"]
            assert [r.id for r in tx.pending_runs(10, {"b", "unknown"})] == ["b-high"]
            assert tx.pending_runs(10, ()) == []
            every = [r.id for r in tx.pending_runs(10, None)]
        assert every == ["b-high", "a-old", "c-new", "a-new"]

    def test_pending_runs_are_claimed_once_across_threads(self) -> None:
        """Threads claiming pending runs concurrently never claim the same run."""
        self.add_runs(*(f"run-{i:02}" for i in range(30)))

        def claim_all(_: int) -> list[str]:
            claimed: list[str] = []
            while True:
                with self.store.transaction() as tx:
                    runs = tx.pending_runs(limit=3)
                    tx.apply([UpdateRun(bump(r, status=Status.RUNNING), r.version) for r in runs])
                if not runs:
                    return claimed
                claimed += [run.id for run in runs]

        claimed = [run_id for ids in self.race(claim_all) for run_id in ids]
        assert sorted(claimed) == [f"run-{i:02}" for i in range(30)]

    # -- job queue ---------------------------------------------------------

    def test_lease_next_job_takes_highest_priority_then_oldest(self) -> None:
        """Jobs are leased by priority, then age."""
        self.add_runs("run-1")
        self.apply(
            EnqueueJob(make_job("old-low", created=0, priority=1)),
            EnqueueJob(make_job("new-high", created=5, priority=9)),
            EnqueueJob(make_job("new-mid", created=4)),
            EnqueueJob(make_job("old-mid", created=1)),
        )
        leased = []
        with self.store.transaction() as tx:
            while (job := tx.lease_next_job("w", at(10))) is not None:
                leased.append(job.id)
        assert leased == ["new-high", "old-mid", "new-mid", "old-low"]

    def test_lease_next_job_only_takes_jobs_of_the_given_workflows(self) -> None:
        """With ``workflow_ids``, a job of another workflow is skipped even when it comes
        first, and stays QUEUED for a worker that knows it (SPEC §19)."""
        self.add_runs("run-1")
        self.apply(
            EnqueueJob(make_job("b-high", created=0, priority=9, workflow_id="b")),
            EnqueueJob(make_job("a-old", created=1, workflow_id="a")),
            EnqueueJob(make_job("c-new", created=2, workflow_id="c")),
        )
        with self.store.transaction() as tx:
            assert tx.lease_next_job("w", at(10), ()) is None
            leased = []
            while (job := tx.lease_next_job("w", at(10), frozenset({"a", "c"}))) is not None:
                leased.append(job.id)
        assert leased == ["a-old", "c-new"]
        statuses = {job.id: job.status for job in self.store.get_jobs("run-1")}
        assert statuses == {
            "b-high": JobStatus.QUEUED,
            "a-old": JobStatus.LEASED,
            "c-new": JobStatus.LEASED,
        }
        with self.store.transaction() as tx:
            job = tx.lease_next_job("w2", at(10), ["b"])
            assert job is not None and (job.id, job.worker_id) == ("b-high", "w2")

    def test_lease_next_job_without_workflow_ids_takes_any_workflow(self) -> None:
        """``workflow_ids=None`` (the default) leases jobs of every workflow."""
        self.add_runs("run-1")
        self.apply(
            EnqueueJob(make_job("x", created=0, workflow_id="x")),
            EnqueueJob(make_job("y", created=1, workflow_id="y")),
        )
        with self.store.transaction() as tx:
            first = tx.lease_next_job("w", at(10), None)
            second = tx.lease_next_job("w", at(10))
        assert first is not None and second is not None
        assert (first.id, second.id) == ("x", "y")

    def test_lease_next_job_with_workflow_ids_is_exclusive_across_threads(self) -> None:
        """Filtered leases by concurrent workers never get the same job; jobs of a
        workflow no worker names stay QUEUED."""
        self.add_runs("run-1")
        workflows = ["a", "b", "other"]
        self.apply(
            *(
                EnqueueJob(make_job(f"job-{i:02}", created=i, workflow_id=workflows[i % 3]))
                for i in range(30)
            )
        )

        def lease_all(worker: int) -> list[str]:
            leased: list[str] = []
            while True:
                with self.store.transaction() as tx:
                    job = tx.lease_next_job(f"worker-{worker}", at(100), ("a", "b"))
                if job is None:
                    return leased
                leased.append(job.id)

        leased = [job_id for ids in self.race(lease_all) for job_id in ids]
        assert sorted(leased) == [f"job-{i:02}" for i in range(30) if i % 3 != 2]
        queued = [job.id for job in self.store.get_jobs("run-1") if job.status == JobStatus.QUEUED]
        assert queued == [f"job-{i:02}" for i in range(30) if i % 3 == 2]

    def test_lease_next_job_leases_it_to_the_worker(self) -> None:
        """The leased job is LEASED to the worker, ``locked_at`` now, and stays so."""
        self.add_runs("run-1")
        self.apply(EnqueueJob(make_job("job-1")))
        with self.store.transaction() as tx:
            job = tx.lease_next_job("worker-a", at(3))
        expected = make_job("job-1", status=JobStatus.LEASED, worker_id="worker-a", locked_at=at(3))
        assert job == expected
        assert self.store.get_jobs("run-1") == [expected]

    def test_lease_next_job_waits_until_a_job_is_available(self) -> None:
        """A job is not leased before its ``available_at``; at that instant it is."""
        self.add_runs("run-1")
        self.apply(EnqueueJob(make_job("job-1", available_at=at(60))))
        with self.store.transaction() as tx:
            assert tx.lease_next_job("w", at(59)) is None
            leased = tx.lease_next_job("w", at(60))
        assert leased is not None and leased.id == "job-1"

    def test_lease_next_job_ignores_jobs_not_queued(self) -> None:
        """Only QUEUED jobs are leased."""
        self.add_runs("run-1")
        self.apply(
            *(
                EnqueueJob(make_job(f"job-{status}", status=status))
                for status in JobStatus
                if status is not JobStatus.QUEUED
            )
        )
        with self.store.transaction() as tx:
            assert tx.lease_next_job("w", at(10)) is None

    def test_lease_next_job_is_exclusive_across_threads(self) -> None:
        """Threads leasing concurrently never get the same job, and every job is leased."""
        self.add_runs("run-1")
        self.apply(*(EnqueueJob(make_job(f"job-{i:02}", created=i)) for i in range(40)))

        def lease_all(worker: int) -> list[str]:
            leased: list[str] = []
            while True:
                with self.store.transaction() as tx:
                    job = tx.lease_next_job(f"worker-{worker}", at(100))
                if job is None:
                    return leased
                leased.append(job.id)

        leased = [job_id for ids in self.race(lease_all) for job_id in ids]
        assert sorted(leased) == [f"job-{i:02}" for i in range(40)]

    def test_update_job_writes_the_new_state(self) -> None:
        """``UpdateJob`` replaces the job record."""
        self.add_runs("run-1")
        self.apply(EnqueueJob(make_job("job-1")))
        retried = make_job("job-1", attempt=1, available_at=at(30), last_error="E: x", reap_count=1)
        self.apply(UpdateJob(retried))
        with self.store.transaction() as tx:
            assert tx.get_job("job-1") == retried
            assert tx.get_job("missing") is None

    def test_renew_lease_moves_locked_at_for_the_holder(self) -> None:
        """The worker holding a lease can renew it."""
        self.add_runs("run-1")
        self.apply(EnqueueJob(make_job("job-1")))
        with self.store.transaction() as tx:
            tx.lease_next_job("worker-a", at(1))
        assert self.store.renew_lease("job-1", "worker-a", at(20)) is True
        assert self.store.get_jobs("run-1")[0].locked_at == at(20)

    def test_renew_lease_refuses_another_worker(self) -> None:
        """A worker that does not hold the lease cannot renew it."""
        self.add_runs("run-1")
        self.apply(EnqueueJob(make_job("job-1")))
        with self.store.transaction() as tx:
            tx.lease_next_job("worker-a", at(1))
        assert self.store.renew_lease("job-1", "worker-b", at(20)) is False
        assert self.store.get_jobs("run-1")[0].locked_at == at(1)

    def test_renew_lease_refuses_a_job_not_leased(self) -> None:
        """Queued and unknown jobs have no lease to renew."""
        self.add_runs("run-1")
        self.apply(EnqueueJob(make_job("job-1", worker_id="worker-a")))
        assert self.store.renew_lease("job-1", "worker-a", at(20)) is False
        assert self.store.renew_lease("missing", "worker-a", at(20)) is False
        assert self.store.get_jobs("run-1") == [make_job("job-1", worker_id="worker-a")]

    def test_stale_jobs_are_leases_taken_before_the_threshold(self) -> None:
        """A lease last taken strictly before ``leased_before`` is stale."""
        self.add_runs("run-1")
        self.apply(
            EnqueueJob(make_job("old", status=JobStatus.LEASED, worker_id="w", locked_at=at(1))),
            EnqueueJob(make_job("edge", status=JobStatus.LEASED, worker_id="w", locked_at=at(5))),
            EnqueueJob(make_job("new", status=JobStatus.LEASED, worker_id="w", locked_at=at(9))),
            EnqueueJob(make_job("queued")),
        )
        with self.store.transaction() as tx:
            assert [job.id for job in tx.stale_jobs(at(5), limit=10)] == ["old"]
            assert len(tx.stale_jobs(at(10), limit=2)) == 2

    def test_get_jobs_lists_the_runs_jobs_oldest_first(self) -> None:
        """``get_jobs`` returns one run's jobs by age."""
        self.add_runs("run-1", "run-2")
        self.apply(
            EnqueueJob(make_job("a", created=1)),
            EnqueueJob(make_job("other", "run-2", created=2)),
            EnqueueJob(make_job("b", created=3)),
        )
        assert [job.id for job in self.store.get_jobs("run-1")] == ["a", "b"]
        with self.store.transaction() as tx:
            assert [job.id for job in tx.get_jobs("run-1")] == ["a", "b"]
