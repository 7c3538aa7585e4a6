"""Conformance cases: transactions as units, optimistic versions, unique keys."""

from __future__ import annotations

import pytest
from attrs import evolve

from kernel.effects import (
    AppendLog,
    EnqueueJob,
    InsertRun,
    InsertStage,
    PutBlob,
    UpdateJob,
    UpdateRun,
    UpdateStage,
)
from kernel.errors import StaleVersionError, StoreError
from kernel.status import Status
from testing.store_cases.base import (
    THREADS,
    StoreCase,
    append,
    at,
    bump,
    key,
    log,
    make_job,
    make_run,
    make_stage,
)


class TransactionCases(StoreCase):
    """Transactions commit and roll back as units; versions and keys hold (SPEC §6.1, §6.4)."""

    # -- transactions ------------------------------------------------------

    def test_committed_transaction_is_visible_to_queries(self) -> None:
        """What a transaction applies is there once it commits."""
        self.apply(InsertRun(make_run()))
        assert self.store.get_run("run-1") == make_run()

    def test_transaction_reads_its_own_writes(self) -> None:
        """Loads inside a transaction see the effects already applied in it."""
        with self.store.transaction() as tx:
            tx.apply([InsertRun(make_run()), InsertStage(make_stage("run-1", "a"))])
            assert tx.get_run("run-1") == make_run()
            assert tx.get_stages("run-1") == [make_stage("run-1", "a")]

    def test_exception_in_transaction_leaves_nothing_behind(self) -> None:
        """An exception rolls back every kind of effect applied in the transaction."""
        with pytest.raises(RuntimeError, match="boom"), self.store.transaction() as tx:
            tx.apply(
                [
                    InsertRun(make_run()),
                    InsertStage(make_stage("run-1", "a")),
                    EnqueueJob(make_job("job-1")),
                    append("ev-1"),
                    PutBlob("blob", {"a": 1}),
                    AppendLog(log("log-1")),
                ]
            )
            assert tx.acquire_idempotency(key()) is None
            raise RuntimeError("boom")
        assert self.store.get_run("run-1") is None
        assert self.store.get_stages("run-1") == []
        assert self.store.get_jobs("run-1") == []
        assert self.store.get_outbox() == []
        assert self.store.get_blob("blob") == (False, None)
        assert self.store.get_logs("run-1") == []
        with self.store.transaction() as tx:
            assert tx.get_idempotency("key-1", "run.create") is None

    def test_rollback_keeps_the_last_committed_state(self) -> None:
        """A rolled-back update leaves the record as it was committed."""
        self.add_runs("run-1")
        with pytest.raises(RuntimeError), self.store.transaction() as tx:
            run = make_run()
            tx.apply([UpdateRun(bump(run, status=Status.RUNNING), expected_version=1)])
            raise RuntimeError("boom")
        assert self.store.get_run("run-1") == make_run()

    def test_failed_effect_rolls_back_earlier_effects_of_its_transaction(self) -> None:
        """A stale update raised inside ``apply`` undoes the effects before it."""
        self.add_runs("run-1")
        stale = UpdateRun(evolve(make_run(), version=7), expected_version=6)
        with pytest.raises(StaleVersionError), self.store.transaction() as tx:
            tx.apply([InsertRun(make_run("run-2")), stale])
        assert self.store.get_run("run-2") is None

    def test_concurrent_read_modify_write_transactions_lose_no_update(self) -> None:
        """Threads incrementing one run, each in its own transactions, all count."""
        self.add_runs("run-1")

        def increment(_: int) -> None:
            for _ in range(5):
                with self.store.transaction() as tx:
                    run = tx.get_run("run-1")
                    assert run is not None
                    bumped = bump(run, total_tokens=run.total_tokens + 1)
                    tx.apply([UpdateRun(bumped, expected_version=run.version)])

        self.race(increment)
        run = self.store.get_run("run-1")
        assert run is not None
        assert (run.total_tokens, run.version) == (5 * THREADS, 5 * THREADS + 1)

    # -- versions and uniqueness -------------------------------------------

    def test_update_run_stores_the_new_record_and_version(self) -> None:
        """``UpdateRun`` with the current version replaces the record."""
        self.add_runs("run-1")
        running = bump(make_run(), status=Status.RUNNING, started_at=at(5))
        self.apply(UpdateRun(running, expected_version=1))
        assert self.store.get_run("run-1") == running
        assert running.version == 2

    def test_update_run_with_stale_version_raises(self) -> None:
        """``UpdateRun`` stating a version that is not current raises ``StaleVersionError``."""
        self.add_runs("run-1")
        self.apply(UpdateRun(bump(make_run()), expected_version=1))
        with pytest.raises(StaleVersionError), self.store.transaction() as tx:
            tx.apply([UpdateRun(bump(make_run(), error="late"), expected_version=1)])
        run = self.store.get_run("run-1")
        assert run is not None
        assert (run.version, run.error) == (2, None)

    def test_update_of_missing_run_raises_stale_version(self) -> None:
        """Updating a run that does not exist is a version mismatch."""
        with pytest.raises(StaleVersionError), self.store.transaction() as tx:
            tx.apply([UpdateRun(bump(make_run()), expected_version=1)])

    def test_update_stage_stores_the_new_record_and_version(self) -> None:
        """``UpdateStage`` with the current version replaces the record."""
        self.add_runs("run-1")
        stage = make_stage("run-1", "a")
        self.apply(InsertStage(stage))
        running = bump(stage, status=Status.RUNNING, attempt=1, started_at=at(3))
        self.apply(UpdateStage(running, expected_version=1))
        assert self.store.get_stages("run-1") == [running]

    def test_update_stage_with_stale_version_raises(self) -> None:
        """``UpdateStage`` stating a version that is not current raises ``StaleVersionError``."""
        self.add_runs("run-1")
        stage = make_stage("run-1", "a")
        self.apply(InsertStage(stage), UpdateStage(bump(stage), expected_version=1))
        with pytest.raises(StaleVersionError), self.store.transaction() as tx:
            tx.apply([UpdateStage(bump(stage, error="late"), expected_version=1)])
        assert self.store.get_stages("run-1") == [bump(stage)]

    def test_update_of_missing_stage_raises_stale_version(self) -> None:
        """Updating a stage record that does not exist is a version mismatch."""
        self.add_runs("run-1")
        with pytest.raises(StaleVersionError), self.store.transaction() as tx:
            tx.apply([UpdateStage(bump(make_stage("run-1", "a")), expected_version=1)])

    def test_second_stage_with_same_run_and_stage_id_is_refused(self) -> None:
        """A run has at most one record per stage id."""
        self.add_runs("run-1")
        self.apply(InsertStage(make_stage("run-1", "a")))
        duplicate = make_stage("run-1", "a", id="other-record")
        with pytest.raises(StoreError), self.store.transaction() as tx:
            tx.apply([InsertStage(duplicate)])
        assert self.store.get_stages("run-1") == [make_stage("run-1", "a")]

    def test_same_stage_id_in_two_runs_is_allowed(self) -> None:
        """Stage ids are unique per run, not globally."""
        self.add_runs("run-1", "run-2")
        self.apply(InsertStage(make_stage("run-1", "a")), InsertStage(make_stage("run-2", "a")))
        assert len(self.store.get_stages("run-1")) == len(self.store.get_stages("run-2")) == 1

    def test_inserting_an_existing_run_is_refused(self) -> None:
        """Run ids are unique."""
        self.add_runs("run-1")
        with pytest.raises(StoreError), self.store.transaction() as tx:
            tx.apply([InsertRun(make_run(workflow_name="Other"))])
        assert self.store.get_run("run-1") == make_run()

    def test_enqueueing_an_existing_job_is_refused(self) -> None:
        """Job ids are unique."""
        self.add_runs("run-1")
        self.apply(EnqueueJob(make_job("job-1")))
        with pytest.raises(StoreError), self.store.transaction() as tx:
            tx.apply([EnqueueJob(make_job("job-1"))])

    def test_updating_a_missing_job_is_refused(self) -> None:
        """``UpdateJob`` of an unknown job raises ``StoreError``."""
        with pytest.raises(StoreError), self.store.transaction() as tx:
            tx.apply([UpdateJob(make_job("job-1"))])
