"""The SQLite codec: JSON columns hold what ``json.dumps`` wrote before orjson did most
of the writing, and records come back from rows field for field."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from adapters.sqlite.codec import RecordCodec, dump_json, load_json, timestamp
from kernel.convert import to_json
from kernel.errors import StoreError
from kernel.records import WorkflowRun, WorkflowStage
from kernel.schedules import ScheduleRecord
from kernel.status import Status
from tests.adapters.json_values import T0, VALUES


def stdlib_text(value: Any) -> str:
    """What the codec wrote before: ``json.dumps(to_json(value))``, compact, unescaped."""
    return json.dumps(to_json(value), ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("value", list(VALUES.values()), ids=list(VALUES))
def test_a_json_column_holds_the_text_the_standard_library_writes(value: Any) -> None:
    assert dump_json(value) == stdlib_text(value)


@pytest.mark.parametrize("value", list(VALUES.values()), ids=list(VALUES))
def test_a_json_column_reads_back_what_the_standard_library_reads(value: Any) -> None:
    text = dump_json(value)
    read, expected = load_json(text), json.loads(text)
    assert json.dumps(read) == json.dumps(expected)  # NaN != NaN: compare their texts


def test_what_json_cannot_write_is_refused_as_before() -> None:
    for value in ({"s": {1, 2}}, {"b": b"bytes"}, object()):
        with pytest.raises(TypeError):
            dump_json(value)
    with pytest.raises(ValueError, match="Circular"):
        circular: list[Any] = []
        circular.append(circular)
        dump_json(circular)


def test_a_uuid_is_written_as_its_string() -> None:
    """The one difference: orjson writes a UUID the standard library refused."""
    made = uuid.uuid4()
    assert dump_json({"id": made}) == f'{{"id":"{made}"}}'


def test_timestamps_are_utc_with_microseconds_whatever_the_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert timestamp(datetime(2024, 1, 1, 2, tzinfo=plus_two)) == "2024-01-01T00:00:00.000000+00:00"
    assert timestamp(T0) == timestamp(T0) == "2025-03-04T05:06:07.000008+00:00"
    with pytest.raises(StoreError, match="naive"):
        timestamp(datetime(2024, 1, 1))


def test_records_of_every_column_kind_come_back_equal() -> None:
    run = WorkflowRun(
        id="r1",
        workflow_id="w",
        workflow_name="W",
        status=Status.COMPLETED,
        input={"n": [1, 2.5, None, "x"]},
        config={"a": {"k": True}},
        output={"cost": "0.5", "nan": None},
        created_at=T0,
        completed_at=T0 + timedelta(seconds=1),
        duration_ms=1000,
        total_cost=Decimal("0.3000"),
        budget=None,
    )
    stage = WorkflowStage(
        id="s1",
        workflow_run_id="r1",
        stage_id="a",
        stage_name="A",
        stage_number=1,
        execution_group=1,
        status=Status.SUSPENDED,
        suspended_state={"batch": "b-1"},
        next_poll_at=T0,
        poll_interval=timedelta(seconds=90, microseconds=5),
        created_at=T0,
    )
    schedule = ScheduleRecord(
        id="sch",
        workflow_id="w",
        cron=None,
        every=timedelta(minutes=5),
        timezone="UTC",
        input={},
        enabled=False,
        next_fire_at=T0,
        created_at=T0,
        updated_at=T0,
    )
    for record in (run, stage, schedule):
        codec = RecordCodec.of(type(record))
        row = codec.encode(record)
        assert codec.decode({**row, "position": 7}) == record  # extra columns are ignored
    assert RecordCodec.of(ScheduleRecord).encode(schedule)["enabled"] is False


def test_a_stored_status_that_is_no_member_is_refused() -> None:
    codec = RecordCodec.of(WorkflowStage)
    stage = WorkflowStage(
        id="s1",
        workflow_run_id="r1",
        stage_id="a",
        stage_name="A",
        stage_number=1,
        execution_group=1,
        status=Status.PENDING,
        created_at=T0,
    )
    row = {**codec.encode(stage), "status": "SLEEPING"}
    with pytest.raises(ValueError, match="SLEEPING"):
        codec.decode(row)
