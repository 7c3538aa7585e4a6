"""Conformance cases: workflow versions on runs and jobs, and the claim and lease
filters by ``(workflow id, version)`` that make rolling deploys safe (SPEC §16)."""

from __future__ import annotations

from kernel.effects import EnqueueJob, InsertRun, UpdateRun
from kernel.status import JobStatus, Status
from testing.store_cases.base import StoreCase, at, bump, make_job, make_run

V1 = ("wf", "1")
V2 = ("wf", "2")


class VersionCases(StoreCase):
    # -- what is stored ------------------------------------------------------

    def test_a_run_keeps_its_workflow_version(self) -> None:
        """``workflow_version`` is written and read back; a run written without one
        runs version ``"1"``."""
        self.apply(
            InsertRun(make_run("old")),
            InsertRun(make_run("new", created=1, workflow_version="2024-06.b")),
        )
        old, new = self.store.get_run("old"), self.store.get_run("new")
        assert old is not None and old.workflow_version == "1"
        assert new is not None and new.workflow_version == "2024-06.b"
        with self.store.transaction() as tx:
            assert [run.workflow_version for run in tx.pending_runs(10)] == ["1", "2024-06.b"]

    def test_an_update_moves_a_run_to_another_version(self) -> None:
        """``run.rerunFrom(version=...)`` rewrites the run's version with its other fields."""
        run = make_run("run-1", status=Status.COMPLETED)
        self.apply(InsertRun(run))
        moved = bump(run, status=Status.RUNNING, workflow_version="2")
        self.apply(UpdateRun(moved, expected_version=run.version))
        assert self.store.get_run("run-1") == moved

    def test_a_job_keeps_its_workflow_version(self) -> None:
        """A job's ``workflow_version`` is written, read back and returned by the lease."""
        self.add_runs("run-1")
        self.apply(
            EnqueueJob(make_job("j1", created=0)),
            EnqueueJob(make_job("j2", created=1, workflow_version="2")),
        )
        assert [job.workflow_version for job in self.store.get_jobs("run-1")] == ["1", "2"]
        with self.store.transaction() as tx:
            first = tx.lease_next_job("w", at(10))
            second = tx.lease_next_job("w", at(10))
            assert tx.get_job("j2") == second
        assert first is not None and (first.id, first.workflow_version) == ("j1", "1")
        assert second is not None and (second.id, second.workflow_version) == ("j2", "2")

    # -- claiming runs ---------------------------------------------------------

    def test_pending_runs_only_offers_the_versions_given(self) -> None:
        """With ``versions``, only runs whose (workflow id, version) pair is listed come,
        in the usual order; an id listed with another version does not match, ``None``
        is every version and an empty collection none."""
        self.apply(
            InsertRun(make_run("v1-old", created=0)),
            InsertRun(make_run("v2-high", created=1, workflow_version="2", priority=9)),
            InsertRun(make_run("other-1", created=2, workflow_id="other")),
            InsertRun(make_run("v1-new", created=3)),
            InsertRun(make_run("other-2", created=4, workflow_id="other", workflow_version="2")),
        )

        def ids(**given: object) -> list[str]:
            with self.store.transaction() as tx:
                return [run.id for run in tx.pending_runs(10, **given)]  # type: ignore[arg-type]

        assert ids(versions=frozenset({V1})) == ["v1-old", "v1-new"]
        assert ids(versions=[V2, ("other", "1")]) == ["v2-high", "other-1"]
        assert ids(versions={("other", "2"), ("wf", "3")}) == ["other-2"]
        assert ids(versions=()) == []
        assert ids(versions=None) == ["v2-high", "v1-old", "other-1", "v1-new", "other-2"]
        # Both filters together: the pair must be listed and the id too.
        assert ids(workflow_ids=["other"], versions=[V1, V2, ("other", "2")]) == ["other-2"]

    def test_pending_runs_with_versions_respects_the_limit(self) -> None:
        """The filter is applied before the limit: runs of other versions take no slot."""
        self.apply(
            InsertRun(make_run("v2-a", created=0, workflow_version="2")),
            InsertRun(make_run("v2-b", created=1, workflow_version="2")),
            InsertRun(make_run("v1", created=2)),
        )
        with self.store.transaction() as tx:
            assert [run.id for run in tx.pending_runs(1, versions=[V1])] == ["v1"]

    # -- leasing jobs ----------------------------------------------------------

    def test_lease_next_job_only_takes_jobs_of_the_versions_given(self) -> None:
        """A job of a version the worker lacks is skipped even when it comes first, and
        stays QUEUED for a worker that holds it: a rolling deploy never hands an old
        run's job to code that does not have its stages."""
        self.add_runs("run-1")
        self.apply(
            EnqueueJob(make_job("v1-high", created=0, priority=9)),
            EnqueueJob(make_job("v2-old", created=1, workflow_version="2")),
            EnqueueJob(make_job("other-1", created=2, workflow_id="other", workflow_version="2")),
            EnqueueJob(make_job("v2-new", created=3, workflow_version="2")),
        )
        with self.store.transaction() as tx:
            assert tx.lease_next_job("w", at(10), versions=()) is None
            assert tx.lease_next_job("w", at(10), versions=[("wf", "3")]) is None
            leased = []
            while (job := tx.lease_next_job("new", at(10), versions=frozenset({V2}))) is not None:
                leased.append(job.id)
        assert leased == ["v2-old", "v2-new"]
        statuses = {job.id: job.status for job in self.store.get_jobs("run-1")}
        assert statuses == {
            "v1-high": JobStatus.QUEUED,
            "v2-old": JobStatus.LEASED,
            "other-1": JobStatus.QUEUED,
            "v2-new": JobStatus.LEASED,
        }
        with self.store.transaction() as tx:
            old = tx.lease_next_job("old", at(10), versions=[V1, ("other", "2")])
            other = tx.lease_next_job("old", at(10), versions=[V1, ("other", "2")])
        assert old is not None and (old.id, old.worker_id) == ("v1-high", "old")
        assert other is not None and other.id == "other-1"

    def test_lease_next_job_with_both_filters_needs_both(self) -> None:
        """``workflow_ids`` and ``versions`` together: a job must pass each."""
        self.add_runs("run-1")
        self.apply(
            EnqueueJob(make_job("wf-2", created=0, workflow_version="2")),
            EnqueueJob(make_job("other-2", created=1, workflow_id="other", workflow_version="2")),
        )
        with self.store.transaction() as tx:
            job = tx.lease_next_job("w", at(10), ["other"], versions=[V2, ("other", "2")])
            assert job is not None and job.id == "other-2"
            assert tx.lease_next_job("w", at(10), ["other"], versions=[V2]) is None

    def test_concurrent_leases_by_version_never_share_a_job(self) -> None:
        """Workers holding different versions, leasing at once, each get jobs of their
        own versions only, and no job twice."""
        self.add_runs("run-1")
        self.apply(
            *(
                EnqueueJob(make_job(f"job-{n}", created=n, workflow_version=str(1 + n % 2)))
                for n in range(16)
            )
        )

        def drain(worker: int) -> list[tuple[str, str]]:
            version = str(1 + worker % 2)
            got: list[tuple[str, str]] = []
            while True:
                with self.store.transaction() as tx:
                    job = tx.lease_next_job(f"worker-{worker}", at(100), versions=[("wf", version)])
                if job is None:
                    return got
                got.append((job.id, job.workflow_version))
                assert job.workflow_version == version

        leased = [job for jobs in self.race(drain, threads=4) for job in jobs]
        assert sorted(job_id for job_id, _ in leased) == sorted(f"job-{n}" for n in range(16))
