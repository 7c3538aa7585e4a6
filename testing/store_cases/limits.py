"""Conformance cases: concurrency and rate limits in the lease, and
``max_running_runs`` in the claim (SPEC §15).

A job with a ``limit_key`` is leased only while its key has room: fewer than
its ``limit_max_running`` jobs of the key LEASED, and fewer than its
``limit_rate_count`` leases of the key in ``(now - per, now]``. A held job
stays QUEUED with its attempt untouched, and the jobs behind it pass.
"""

from __future__ import annotations

from typing import Any

from attrs import evolve

from kernel.effects import EnqueueJob, InsertRun, UpdateJob
from kernel.records import Job
from kernel.status import JobStatus, Status
from testing.store_cases.base import StoreCase, at, make_job, make_run

SECOND_US = 1_000_000


def limited(job_id: str, key: str, created: float = 0, **limit: Any) -> Job:
    """A QUEUED job of run-1 with ``limit_key=key`` and the given limit numbers."""
    return make_job(job_id, created=created, limit_key=key, **limit)


class LimitCases(StoreCase):
    def _lease(self, seconds: float, worker: str = "w") -> str | None:
        with self.store.transaction() as tx:
            job = tx.lease_next_job(worker, at(seconds))
        return job.id if job is not None else None

    def _lease_all(self, seconds: float) -> list[str]:
        leased: list[str] = []
        while (job_id := self._lease(seconds)) is not None:
            leased.append(job_id)
        return leased

    def _finish(self, job_id: str) -> None:
        job = self.store.get_jobs("run-1")
        done = next(j for j in job if j.id == job_id)
        self.apply(UpdateJob(evolve(done, status=JobStatus.COMPLETED)))

    # -- what is stored ------------------------------------------------------

    def test_a_job_keeps_its_limit(self) -> None:
        """The key and the numbers are written, read back and returned by the lease;
        a job without a limit reads back ``None`` for each."""
        self.add_runs("run-1")
        job = limited("j1", "openai", limit_max_running=3, limit_rate_count=5)
        job = evolve(job, limit_rate_per_us=60 * SECOND_US)
        self.apply(EnqueueJob(job), EnqueueJob(make_job("j2", created=1)))
        assert self.store.get_jobs("run-1")[0] == job
        plain = self.store.get_jobs("run-1")[1]
        assert (plain.limit_key, plain.limit_max_running, plain.limit_rate_count) == (None,) * 3
        with self.store.transaction() as tx:
            leased = tx.lease_next_job("w", at(10))
        assert leased is not None and leased.id == "j1"
        assert (leased.limit_key, leased.limit_max_running) == ("openai", 3)
        assert leased.limit_rate_per_us == 60 * SECOND_US

    # -- max_running -----------------------------------------------------------

    def test_max_running_caps_leased_jobs_of_a_key(self) -> None:
        """With ``max_running=2`` only two jobs of the key are leased; finishing one
        frees a slot for the next, in lease order."""
        self.add_runs("run-1")
        self.apply(
            *(EnqueueJob(limited(f"j{i}", "k", created=i, limit_max_running=2)) for i in range(4))
        )
        assert self._lease_all(10) == ["j0", "j1"]
        self._finish("j0")
        assert self._lease_all(11) == ["j2"]
        self._finish("j1")
        self._finish("j2")
        assert self._lease_all(12) == ["j3"]

    def test_a_shared_key_counts_every_stage_and_each_checks_its_own_maximum(self) -> None:
        """Two stages share key ``k``: one allows 1 at once, the other 3. Their LEASED
        jobs count together; each stage's job is held by its own maximum."""
        self.add_runs("run-1")
        self.apply(
            EnqueueJob(limited("a1", "k", created=0, limit_max_running=3, stage_id="a")),
            EnqueueJob(limited("b1", "k", created=1, limit_max_running=1, stage_id="b")),
            EnqueueJob(limited("a2", "k", created=2, limit_max_running=3, stage_id="a")),
            EnqueueJob(limited("a3", "k", created=3, limit_max_running=3, stage_id="a")),
        )
        # a1 leased (1 of k); b1 allows 1, so it is held; a2 and a3 fill k to 3.
        assert self._lease_all(10) == ["a1", "a2", "a3"]
        self._finish("a1")
        self._finish("a2")
        assert self._lease_all(11) == []  # a3 still LEASED: b1's maximum of 1 is reached
        self._finish("a3")
        assert self._lease_all(12) == ["b1"]

    def test_only_leased_jobs_count_toward_max_running(self) -> None:
        """Completed, failed and suspended jobs of a key hold no slot."""
        self.add_runs("run-1")
        statuses = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.SUSPENDED)
        self.apply(
            *(
                EnqueueJob(limited(f"old-{s.value}", "k", created=n, status=s, limit_max_running=1))
                for n, s in enumerate(statuses)
            ),
            EnqueueJob(limited("new", "k", created=5, limit_max_running=1)),
        )
        assert self._lease_all(10) == ["new"]

    def test_a_held_job_does_not_block_other_keys_behind_it(self) -> None:
        """Held jobs of a full key at the head of the queue are passed over: the jobs
        of other keys and unlimited jobs behind them are leased, in order."""
        self.add_runs("run-1")
        self.apply(
            EnqueueJob(limited("hot-0", "hot", created=0, limit_max_running=1)),
            *(
                EnqueueJob(limited(f"hot-{i}", "hot", created=i, limit_max_running=1))
                for i in range(1, 6)
            ),
            EnqueueJob(limited("cold", "cold", created=7, limit_max_running=1)),
            EnqueueJob(make_job("free", created=8)),
        )
        assert self._lease_all(10) == ["hot-0", "cold", "free"]

    def test_a_held_job_uses_no_attempt_and_stays_queued(self) -> None:
        """A job held by its limit keeps its status, attempt, worker and lock time."""
        self.add_runs("run-1")
        self.apply(
            EnqueueJob(limited("j0", "k", created=0, limit_max_running=1)),
            EnqueueJob(limited("j1", "k", created=1, limit_max_running=1, attempt=1)),
        )
        before = self.store.get_jobs("run-1")[1]
        assert self._lease_all(10) == ["j0"]
        after = self.store.get_jobs("run-1")[1]
        assert after == before
        assert (after.status, after.attempt, after.worker_id) == (JobStatus.QUEUED, 1, None)

    def test_unlimited_jobs_are_unaffected(self) -> None:
        """Jobs without a limit lease in priority then age order, however many are
        leased, beside a full key."""
        self.add_runs("run-1")
        self.apply(
            EnqueueJob(limited("k0", "k", created=0, limit_max_running=1)),
            EnqueueJob(limited("k1", "k", created=1, limit_max_running=1, priority=9)),
            *(EnqueueJob(make_job(f"u{i}", created=2 + i)) for i in range(5)),
        )
        assert self._lease_all(10) == ["k1", "u0", "u1", "u2", "u3", "u4"]

    def test_max_running_holds_across_threads(self) -> None:
        """Concurrent workers leasing (and finishing) jobs of one key never have more
        than ``max_running`` of them LEASED at once, and lease every job."""
        self.add_runs("run-1")
        self.apply(
            *(
                EnqueueJob(limited(f"j{i:02}", "k", created=i, limit_max_running=2))
                for i in range(24)
            )
        )

        def work(worker: int) -> list[str]:
            done: list[str] = []
            idle = 0
            while idle < 200:
                with self.store.transaction() as tx:
                    job = tx.lease_next_job(f"worker-{worker}", at(100))
                    if job is not None:
                        leased = sum(
                            1
                            for other in tx.get_jobs("run-1")
                            if other.status == JobStatus.LEASED and other.limit_key == "k"
                        )
                        assert leased <= 2, f"{leased} jobs of key k leased at once"
                if job is None:
                    idle += 1
                    if len(self._open()) == 0:
                        return done
                    continue
                done.append(job.id)
                with self.store.transaction() as tx:
                    tx.apply([UpdateJob(evolve(job, status=JobStatus.COMPLETED))])
            return done

        finished = [job_id for ids in self.race(work) for job_id in ids]
        assert sorted(finished) == [f"j{i:02}" for i in range(24)]

    def _open(self) -> list[Job]:
        return [job for job in self.store.get_jobs("run-1") if job.status == JobStatus.QUEUED]

    # -- rate ------------------------------------------------------------------

    def test_rate_window_excludes_its_start_and_includes_now(self) -> None:
        """``Rate(2, per=10 s)``: two leases at t=0; at t=10 they are exactly ``per``
        old, outside ``(t - per, t]``, so two more lease then; not at t=9.999999."""
        self.add_runs("run-1")
        per = {"limit_rate_count": 2, "limit_rate_per_us": 10 * SECOND_US}
        self.apply(*(EnqueueJob(limited(f"j{i}", "k", created=0.001 * i, **per)) for i in range(6)))
        assert self._lease_all(0) == ["j0", "j1"]
        assert self._lease_all(9.999999) == []
        assert self._lease_all(10) == ["j2", "j3"]
        assert self._lease_all(15) == []
        assert self._lease_all(20) == ["j4", "j5"]

    def test_rate_counts_leases_not_running_jobs(self) -> None:
        """Finishing a rate-limited job frees no rate: the window counts leases."""
        self.add_runs("run-1")
        per = {"limit_rate_count": 1, "limit_rate_per_us": 60 * SECOND_US}
        self.apply(EnqueueJob(limited("j0", "k", **per)), EnqueueJob(limited("j1", "k", 1, **per)))
        assert self._lease_all(0) == ["j0"]
        self._finish("j0")
        assert self._lease_all(30) == []
        assert self._lease_all(60) == ["j1"]

    def test_rate_and_max_running_both_apply(self) -> None:
        """A job leases only when its key is under both its maximum and its rate."""
        self.add_runs("run-1")
        both = {"limit_max_running": 1, "limit_rate_count": 5, "limit_rate_per_us": SECOND_US}
        self.apply(*(EnqueueJob(limited(f"j{i}", "k", created=i, **both)) for i in range(3)))
        assert self._lease_all(0) == ["j0"]
        self._finish("j0")
        assert self._lease_all(0.5) == ["j1"]

    def test_a_rate_held_key_does_not_block_other_keys(self) -> None:
        """A key out of rate is passed over like a full one."""
        self.add_runs("run-1")
        per = {"limit_rate_count": 1, "limit_rate_per_us": 60 * SECOND_US}
        self.apply(
            *(EnqueueJob(limited(f"a{i}", "a", created=i, **per)) for i in range(3)),
            EnqueueJob(limited("b0", "b", created=5, **per)),
        )
        assert self._lease_all(0) == ["a0", "b0"]

    # -- max_running_runs --------------------------------------------------------

    def test_running_runs_counts_running_runs_of_each_workflow(self) -> None:
        """Only RUNNING runs count (pending, suspended and finished ones do not); a
        workflow with none is absent."""
        statuses = [Status.RUNNING, Status.RUNNING, Status.SUSPENDED, Status.PENDING]
        self.apply(
            *(
                InsertRun(make_run(f"a{n}", created=n, workflow_id="a", status=status))
                for n, status in enumerate(statuses)
            ),
            InsertRun(make_run("b0", workflow_id="b", status=Status.COMPLETED)),
            InsertRun(make_run("c0", workflow_id="c", status=Status.RUNNING)),
        )
        with self.store.transaction() as tx:
            assert tx.running_runs(["a", "b"]) == {"a": 2}
            assert tx.running_runs([]) == {}
