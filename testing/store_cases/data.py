"""Conformance cases: blobs, logs, query methods and exact record round trips."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from decimal import Decimal

import pytest
from attrs import evolve

from kernel.effects import (
    AppendLog,
    DeleteBlob,
    EnqueueJob,
    InsertRun,
    InsertStage,
    PutBlob,
    UpdateOutbox,
)
from kernel.records import IdempotencyRecord, LogEntry, WorkflowRun
from kernel.status import JobStatus, LogLevel, Status
from testing.store_cases.base import StoreCase, append, at, key, log, make_job, make_run, make_stage

DOCUMENT = {"title": "Ünïcode ✓", "pages": [1, 2.5, None, True], "meta": {"nested": {"a": []}}}


class DataCases(StoreCase):
    """Blobs, logs and queries; every record comes back exactly as written (SPEC §3.2, §7)."""

    # -- blobs -------------------------------------------------------------

    def test_blob_round_trips_a_json_value(self) -> None:
        """``put_blob`` then ``get_blob`` gives back an equal JSON value."""
        self.store.put_blob("out/run-1/a", DOCUMENT)
        assert self.store.get_blob("out/run-1/a") == (True, DOCUMENT)

    def test_missing_blob_is_reported_absent(self) -> None:
        """An unknown key gives ``(False, None)``; a stored ``None`` is present."""
        self.store.put_blob("none", None)
        assert self.store.get_blob("missing") == (False, None)
        assert self.store.get_blob("none") == (True, None)

    def test_put_blob_replaces_the_value(self) -> None:
        """A second put under one key overwrites the first."""
        self.store.put_blob("k", [1])
        self.store.put_blob("k", {"v": 2})
        assert self.store.get_blob("k") == (True, {"v": 2})

    def test_delete_blob_removes_the_key_and_ignores_missing_keys(self) -> None:
        """``delete_blob`` forgets a key; deleting an absent key is no error."""
        self.store.put_blob("k", 1)
        self.store.delete_blob("k")
        self.store.delete_blob("never")
        assert self.store.get_blob("k") == (False, None)

    def test_blobs_are_detached_copies(self) -> None:
        """Changing the value given to or returned by the store changes nothing stored."""
        value = {"items": [1, 2]}
        self.store.put_blob("k", value)
        value["items"].append(3)
        _, loaded = self.store.get_blob("k")
        loaded["items"].append(4)
        assert self.store.get_blob("k") == (True, {"items": [1, 2]})

    def test_blob_effects_apply_in_the_transaction(self) -> None:
        """``PutBlob`` and ``DeleteBlob`` are visible in their transaction and after commit."""
        self.store.put_blob("old", 1)
        with self.store.transaction() as tx:
            tx.apply([PutBlob("new", DOCUMENT), DeleteBlob("old")])
            assert tx.get_blob("new") == (True, DOCUMENT)
            assert tx.get_blob("old") == (False, None)
        assert self.store.get_blob("new") == (True, DOCUMENT)
        assert self.store.get_blob("old") == (False, None)

    # -- logs --------------------------------------------------------------

    def test_get_logs_returns_a_runs_lines_in_append_order(self) -> None:
        """Logs come back per run, in the order they were appended."""
        self.add_runs("run-1", "run-2")
        self.store.append_log(log("l1", seconds=5))
        self.store.append_log(log("other", "run-2"))
        self.apply(AppendLog(log("l2", seconds=1)))
        self.store.append_log(log("l3", seconds=3))
        assert [entry.id for entry in self.store.get_logs("run-1")] == ["l1", "l2", "l3"]

    # -- queries -----------------------------------------------------------

    def test_get_run_of_an_unknown_id_is_none(self) -> None:
        """Unknown ids give ``None`` or empty lists, never an error."""
        assert self.store.get_run("missing") is None
        assert self.store.get_stages("missing") == []
        assert self.store.get_jobs("missing") == []
        assert self.store.get_logs("missing") == []
        with self.store.transaction() as tx:
            assert tx.get_run("missing") is None

    def test_list_runs_is_newest_first(self) -> None:
        """``list_runs`` orders by creation time, newest first."""
        self.apply(*(InsertRun(make_run(f"run-{n}", created=n)) for n in (2, 9, 5)))
        assert [run.id for run in self.store.list_runs()] == ["run-9", "run-5", "run-2"]

    def test_list_runs_filters_by_status_and_workflow(self) -> None:
        """``status`` and ``workflow_id`` narrow the list; both together intersect."""
        self.apply(
            InsertRun(make_run("a", created=1)),
            InsertRun(make_run("b", created=2, status=Status.RUNNING)),
            InsertRun(make_run("c", created=3, workflow_id="other")),
            InsertRun(make_run("d", created=4, workflow_id="other", status=Status.RUNNING)),
        )
        assert [r.id for r in self.store.list_runs(status=Status.RUNNING)] == ["d", "b"]
        assert [r.id for r in self.store.list_runs(workflow_id="other")] == ["d", "c"]
        both = self.store.list_runs(status=Status.PENDING, workflow_id="wf")
        assert [r.id for r in both] == ["a"]

    def test_list_runs_respects_limit(self) -> None:
        """At most ``limit`` runs, the newest."""
        self.apply(*(InsertRun(make_run(f"run-{n}", created=n)) for n in range(5)))
        assert [run.id for run in self.store.list_runs(limit=2)] == ["run-4", "run-3"]

    # -- round trips -------------------------------------------------------

    def test_run_record_round_trips_exactly(self) -> None:
        """Every field of a run comes back equal."""
        run = make_run(
            status=Status.COMPLETED,
            input=DOCUMENT,
            config={"extract": {"model": "m", "retries": 2, "ratio": 0.5}},
            priority=8,
            metadata={"tenant": "t-1", "tags": ["a"]},
            output={"summary": "ok", "n": 3},
            error="ValueError: nope",
            created_at=at(0.123456),
            started_at=at(1),
            completed_at=at(61.5),
            duration_ms=60500,
            total_cost=Decimal("0.1") + Decimal("0.2"),
            budget=Decimal("2.50"),
            total_tokens=1234,
            version=7,
        )
        self.apply(InsertRun(run))
        assert self.store.get_run(run.id) == run
        assert self.store.list_runs() == [run]

    def test_stage_record_round_trips_exactly(self) -> None:
        """Every field of a stage comes back equal, durations included."""
        self.add_runs("run-1")
        stage = make_stage(
            "run-1",
            "extract",
            2,
            execution_group=1,
            status=Status.SUSPENDED,
            config={"model": "m"},
            output_ref="out/run-1/extract",
            suspended_state={"batch_id": "b-1", "items": [1, 2]},
            next_poll_at=at(90.000001),
            poll_interval=timedelta(seconds=90, microseconds=5),
            max_wait_until=at(3600),
            metrics={"total_cost": 0.25, "total_tokens": 10},
            error=None,
            attempt=2,
            started_at=at(3),
            completed_at=None,
            duration_ms=None,
            version=4,
        )
        self.apply(InsertStage(stage))
        assert self.store.get_stages("run-1") == [stage]

    def test_job_record_round_trips_exactly(self) -> None:
        """Every field of a job comes back equal."""
        self.add_runs("run-1")
        job = make_job(
            "job-1",
            status=JobStatus.SUSPENDED,
            priority=9,
            attempt=2,
            max_attempts=5,
            worker_id="worker-7",
            locked_at=at(4.5),
            available_at=at(600),
            payload={"config": {"model": "m"}, "input": [1, "two"]},
            last_error="TimeoutError: slow",
            reap_count=1,
        )
        self.apply(EnqueueJob(job))
        assert self.store.get_jobs("run-1") == [job]

    def test_outbox_record_round_trips_after_update(self) -> None:
        """An outbox event's publication fields come back as updated."""
        self.add_runs("run-1")
        self.apply(append("ev-1"))
        updated = evolve(
            self.store.get_outbox()[0], published_at=at(9), retry_count=2, dlq_at=at(8)
        )
        self.apply(UpdateOutbox(updated))
        assert self.store.get_outbox() == [updated]

    def test_idempotency_and_log_records_round_trip_exactly(self) -> None:
        """Idempotency records and log entries come back equal."""
        self.add_runs("run-1")
        record: IdempotencyRecord = key(state="COMPLETED", result=[{"id": "run-1"}, None])
        entry = LogEntry(
            id="log-1",
            workflow_run_id="run-1",
            stage_record_id="run-1/a",
            level=LogLevel.WARN,
            message="careful",
            metadata={"page": 3},
            created_at=at(1.5),
        )
        with self.store.transaction() as tx:
            tx.acquire_idempotency(record)
            tx.apply([AppendLog(entry)])
        with self.store.transaction() as tx:
            assert tx.get_idempotency(record.key, record.command_type) == record
        assert self.store.get_logs("run-1") == [entry]

    def test_enum_fields_come_back_as_enum_members(self) -> None:
        """Statuses and levels are the enum members, not bare strings."""
        self.add_runs("run-1")
        self.apply(EnqueueJob(make_job("job-1")), AppendLog(log("l1")))
        run = self.store.get_run("run-1")
        assert run is not None and type(run.status) is Status
        assert type(self.store.get_jobs("run-1")[0].status) is JobStatus
        assert type(self.store.get_logs("run-1")[0].level) is LogLevel

    def test_datetimes_come_back_aware_utc(self) -> None:
        """Datetimes are returned timezone-aware, in UTC, to the microsecond."""
        self.apply(InsertRun(make_run(created_at=at(0.000001), started_at=at(2))))
        run = self.store.get_run("run-1")
        assert run is not None and run.started_at is not None
        for value in (run.created_at, run.started_at):
            assert value.utcoffset() == timedelta(0)
        assert run.created_at == at(0.000001)

    @pytest.mark.parametrize("hours", [-5, 2])
    def test_datetimes_in_other_offsets_come_back_as_the_same_instant(self, hours: int) -> None:
        """A datetime written with another UTC offset reads back equal (same instant)."""
        local = at(3600).astimezone(timezone(timedelta(hours=hours)))
        self.apply(InsertRun(make_run(created_at=local)))
        run: WorkflowRun | None = self.store.get_run("run-1")
        assert run is not None
        assert run.created_at == local
        assert run.created_at.astimezone(UTC) == at(3600)
