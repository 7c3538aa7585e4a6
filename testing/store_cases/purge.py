"""Conformance cases: retention (``runs.purge``, SPEC §16, §16.1).

``purgeable_runs`` hands over finished runs past the cutoff whose outbox is
fully published, oldest finish first; :class:`~kernel.effects.PurgeRun`
deletes one run with every row it owns and nothing of any other run.
"""

from __future__ import annotations

from typing import Any

import pytest
from attrs import evolve

from kernel.effects import (
    AppendLog,
    EnqueueJob,
    InsertRun,
    InsertSignal,
    InsertStage,
    InsertUsage,
    PurgeRun,
    PutBlob,
    UpdateOutbox,
)
from kernel.errors import StaleVersionError
from kernel.records import SignalRecord, WorkflowRun
from kernel.status import RUN_TERMINAL, JobStatus, Status
from testing.store_cases.base import StoreCase, append, at, log, make_job, make_run, make_stage
from testing.store_cases.ledger import make_entry

TERMINAL = (Status.COMPLETED, Status.CANCELLED, Status.FAILED)


def finished_run(run_id: str, finished: float, status: Status = Status.COMPLETED) -> WorkflowRun:
    """A run that ended with ``status`` at ``at(finished)``."""
    return make_run(run_id, started_at=at(0), completed_at=at(finished), status=status)


class PurgeCases(StoreCase):
    """What a purge reads, what it deletes, and what it leaves alone."""

    # -- helpers -----------------------------------------------------------------

    def add_owned_rows(self, run_id: str, published: bool = True) -> None:
        """A stage, a settled job, an outbox event (published unless told), a log line,
        a usage row, a consumed signal, the stage's output and a ``ctx.storage`` value."""
        event_id = f"{run_id}-event"
        self.apply(
            InsertStage(make_stage(run_id, "extract", status=Status.COMPLETED)),
            EnqueueJob(make_job(f"{run_id}-job", run_id, status=JobStatus.COMPLETED)),
            append(event_id, run_id),
            AppendLog(log(f"{run_id}-log", run_id)),
            InsertUsage(make_entry(f"{run_id}-call", run_id)),
            InsertSignal(
                SignalRecord(
                    id=f"{run_id}-signal",
                    workflow_run_id=run_id,
                    name="approval",
                    payload={"ok": True},
                    created_at=at(5),
                    consumed_at=at(6),
                    stage_id="extract",
                )
            ),
            PutBlob(f"runs/{run_id}/stages/extract/output", {"pages": 3}),
            PutBlob(f"runs/{run_id}/storage/notes", ["a", "b"]),
        )
        if published:
            self.publish(run_id)

    def publish(self, run_id: str, **changes: Any) -> None:
        """Mark every outbox event of ``run_id`` published at ``at(50)`` (or ``changes``)."""
        fields = changes or {"published_at": at(50)}
        events = self.store.get_outbox(run_id)
        self.apply(*(UpdateOutbox(evolve(event, **fields)) for event in events))

    def purgeable(self, seconds: float, limit: int = 100, statuses: Any = TERMINAL) -> list[str]:
        with self.store.transaction() as tx:
            return [run.id for run in tx.purgeable_runs(at(seconds), statuses, limit)]

    def purge(self, *runs: WorkflowRun) -> None:
        self.apply(*(PurgeRun(run.id, run.version) for run in runs))

    def snapshot(self, run_id: str) -> dict[str, Any]:
        """Everything the store holds of ``run_id``."""
        return {
            "run": self.store.get_run(run_id),
            "stages": self.store.get_stages(run_id),
            "jobs": self.store.get_jobs(run_id),
            "outbox": self.store.get_outbox(run_id),
            "logs": self.store.get_logs(run_id),
            "usage": self.store.get_usage(run_id),
            "signals": self.store.get_signals(run_id),
            "output": self.store.get_blob(f"runs/{run_id}/stages/extract/output"),
            "storage": self.store.get_blob(f"runs/{run_id}/storage/notes"),
        }

    # -- what is read ------------------------------------------------------------

    def test_finished_runs_before_the_cutoff_come_oldest_first(self) -> None:
        """Only runs that finished strictly before the cutoff, whatever the terminal
        status, ordered by ``completed_at`` (not by creation)."""
        self.apply(
            InsertRun(finished_run("late", 300)),
            InsertRun(finished_run("first", 100, Status.FAILED)),
            InsertRun(finished_run("second", 200, Status.CANCELLED)),
            InsertRun(finished_run("at-cutoff", 400)),
            InsertRun(finished_run("after", 500)),
        )
        assert self.purgeable(400) == ["first", "second", "late"]

    def test_runs_that_have_not_finished_are_never_candidates(self) -> None:
        """PENDING, RUNNING and SUSPENDED runs are not handed over, not even with a
        ``completed_at`` from an earlier life (a run re-run from a stage)."""
        self.apply(
            InsertRun(make_run("pending")),
            InsertRun(make_run("running", status=Status.RUNNING, started_at=at(0))),
            InsertRun(
                make_run("rerun", status=Status.RUNNING, started_at=at(0), completed_at=at(10))
            ),
            InsertRun(make_run("waiting", status=Status.SUSPENDED, completed_at=at(10))),
            InsertRun(finished_run("done", 10)),
        )
        assert self.purgeable(1000) == ["done"]

    def test_only_the_statuses_asked_for(self) -> None:
        self.apply(
            InsertRun(finished_run("ok", 10)),
            InsertRun(finished_run("failed", 20, Status.FAILED)),
            InsertRun(finished_run("cancelled", 30, Status.CANCELLED)),
        )
        assert self.purgeable(1000, statuses=(Status.FAILED,)) == ["failed"]
        assert self.purgeable(1000, statuses=[Status.CANCELLED, Status.COMPLETED]) == [
            "ok",
            "cancelled",
        ]

    def test_a_run_with_an_unpublished_event_is_kept(self) -> None:
        """A pending event, one under a flush's claim, or a dead-lettered one keeps its
        run until it is published; a published outbox does not."""
        for run_id, finished in (("pending", 10), ("dead", 20), ("claimed", 30), ("done", 40)):
            self.apply(InsertRun(finished_run(run_id, finished)))
            self.add_owned_rows(run_id, published=False)
        self.publish("done")
        self.publish("dead", dlq_at=at(50), retry_count=5)
        self.claim(60)
        assert self.purgeable(1000) == ["done"]
        self.publish("pending")
        assert self.purgeable(1000) == ["pending", "done"]

    def test_limit_takes_the_oldest(self) -> None:
        self.apply(*(InsertRun(finished_run(f"run-{i}", 100 - i)) for i in range(5)))
        assert self.purgeable(1000, limit=2) == ["run-4", "run-3"]

    # -- what is deleted ---------------------------------------------------------

    def test_purge_deletes_the_run_and_every_row_it_owns(self) -> None:
        """Its stages, jobs, outbox events, log lines, usage rows, signals, stage
        outputs and ``ctx.storage`` values; another run's rows stay, even one whose id
        starts with the purged run's id."""
        old, neighbour = finished_run("run-1", 10), finished_run("run-10", 20)
        self.apply(InsertRun(old), InsertRun(neighbour))
        self.add_owned_rows("run-1")
        self.add_owned_rows("run-10")
        self.apply(PutBlob("runs/run-1", "not the run's"), PutBlob("run-1/x", "nor this"))
        kept = self.snapshot("run-10")
        self.purge(old)
        assert self.snapshot("run-1") == {
            "run": None,
            "stages": [],
            "jobs": [],
            "outbox": [],
            "logs": [],
            "usage": [],
            "signals": [],
            "output": (False, None),
            "storage": (False, None),
        }
        assert self.snapshot("run-10") == kept
        assert self.store.get_blob("runs/run-1") == (True, "not the run's")
        assert self.store.get_blob("run-1/x") == (True, "nor this")
        assert self.purgeable(1000) == ["run-10"]

    def test_a_purged_run_is_free_for_new_rows_of_another_run(self) -> None:
        """After a purge the store is as if the run had never been: a new run may take
        its id and its outbox numbers from 1 again."""
        old = finished_run("run-1", 10)
        self.apply(InsertRun(old))
        self.add_owned_rows("run-1")
        self.purge(old)
        self.apply(InsertRun(make_run("run-1")), append("again", "run-1"))
        assert [event.sequence for event in self.store.get_outbox("run-1")] == [1]

    def test_purge_of_a_changed_or_missing_run_is_stale(self) -> None:
        """The run must still be at the version the decision read; otherwise nothing of
        the transaction is written."""
        old = finished_run("run-1", 10)
        self.apply(InsertRun(old), InsertRun(finished_run("run-2", 10)))
        self.add_owned_rows("run-1")
        before = self.snapshot("run-1")
        with pytest.raises(StaleVersionError):
            self.apply(PurgeRun("run-2", 1), PurgeRun("run-1", old.version + 1))
        assert self.snapshot("run-1") == before
        assert self.store.get_run("run-2") is not None
        with pytest.raises(StaleVersionError):
            self.apply(PurgeRun("missing", 1))

    def test_a_rolled_back_purge_deletes_nothing(self) -> None:
        old = finished_run("run-1", 10)
        self.apply(InsertRun(old), InsertRun(finished_run("run-2", 10)))
        self.add_owned_rows("run-1")
        self.add_owned_rows("run-2")
        before = [self.snapshot("run-1"), self.snapshot("run-2")]
        with pytest.raises(RuntimeError), self.store.transaction() as tx:
            tx.apply([PurgeRun("run-1", old.version), AppendLog(log("late", "run-2"))])
            raise RuntimeError("the caller changed its mind")
        assert [self.snapshot("run-1"), self.snapshot("run-2")] == before

    def test_concurrent_purges_take_different_runs(self) -> None:
        """Each caller's candidates are its own until it commits: every run is purged
        once, and no caller fails."""
        runs = [finished_run(f"run-{i:02d}", i) for i in range(16)]
        self.apply(*(InsertRun(run) for run in runs))

        def purge_some(_: int) -> list[str]:
            purged: list[str] = []
            while True:
                with self.store.transaction() as tx:
                    found = tx.purgeable_runs(at(1000), RUN_TERMINAL, 2)
                    tx.apply([PurgeRun(run.id, run.version) for run in found])
                if not found:
                    return purged
                purged.extend(run.id for run in found)

        purged = [run_id for ids in self.race(purge_some) for run_id in ids]
        assert sorted(purged) == [run.id for run in runs]
        assert self.purgeable(1000) == []
