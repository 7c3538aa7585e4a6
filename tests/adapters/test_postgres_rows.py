"""Records to the PostgreSQL store's parameters and rows back to records, without a
server: the row decoders of the records every transaction reads give what the
validating converter gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from psycopg.types.json import Jsonb

from adapters.columns import Columns
from adapters.postgres.rows import (
    JsonbLoader,
    _interval,
    json_text,
    params,
    record,
    records,
    rows_json,
)
from kernel.convert import converter, to_json
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.status import JobStatus, Status
from testing.store_cases.base import make_job, make_run, make_stage
from tests.adapters.json_values import T0, VALUES

PLUS_TWO = timezone(timedelta(hours=2))


def as_row(value: Any, **changes: Any) -> dict[str, Any]:
    """The row psycopg gives for ``value``: its fields, enums as their values."""
    row = attrs.asdict(value, recurse=False)
    row.update(changes)
    return {
        name: item.value if isinstance(item, JobStatus | Status) else item
        for name, item in row.items()
    }


ROWS = [
    pytest.param(
        Job,
        as_row(
            make_job("job-1", status=JobStatus.LEASED, worker_id="w1", payload={"n": [1, None]}),
            locked_at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=PLUS_TWO),
        ),
        id="job",
    ),
    pytest.param(
        WorkflowStage,
        as_row(
            make_stage("run-1", "a", status=Status.SUSPENDED, suspended_state={"k": "v"}),
            poll_interval=timedelta(seconds=90),
            next_poll_at=datetime(2026, 1, 2, tzinfo=PLUS_TWO),
        ),
        id="stage",
    ),
    pytest.param(
        WorkflowRun,
        as_row(
            make_run(status=Status.RUNNING, output=None, metadata={"a": "b"}),
            total_cost=Decimal("0.125"),
            budget=None,
        ),
        id="run",
    ),
]


@pytest.mark.parametrize(("cls", "row"), ROWS)
def test_a_row_decodes_to_what_the_converter_structures(
    cls: type[Any], row: dict[str, Any]
) -> None:
    decoded = record(row, cls)
    structured = converter.structure(row, cls)

    assert decoded == structured
    assert [decoded] == records([row], cls)
    for field in attrs.fields(cls):
        value = getattr(decoded, field.name)
        assert type(value) is type(getattr(structured, field.name)), field.name
        if isinstance(value, datetime):
            assert value.tzinfo is UTC, field.name  # as the converter gives times


def test_columns_beyond_the_records_fields_are_ignored() -> None:
    row = as_row(make_job("job-1"), run__id="run-1")
    assert record(row, Job) == make_job("job-1")


def test_a_status_that_is_no_member_is_refused() -> None:
    with pytest.raises(ValueError, match="'PAUSED'"):
        record(as_row(make_job("job-1"), status="PAUSED"), Job)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"{}", {}),
        (b"null", None),
        (
            b'{"s": "\\u00e9\\n", "n": 12345678901234567890123, "f": 0.5}',
            {"s": "\u00e9\n", "n": 12345678901234567890123, "f": 0.5},
        ),
        (b"[1, true, null]", [1, True, None]),
        ('"ünï"'.encode(), "ünï"),
    ],
)
def test_jsonb_text_reads_as_the_standard_library_reads_it(text: bytes, value: Any) -> None:
    loaded = JsonbLoader(0).load(memoryview(text))
    assert loaded == value == json.loads(text)


@pytest.mark.parametrize(
    "value",
    [
        make_job("job-1", status=JobStatus.LEASED, payload={"n": Decimal("1.5")}),
        make_stage("run-1", "a", suspended_state={"k": [1]}, poll_interval=timedelta(seconds=5)),
        make_run(metadata={}, output=None, total_cost=Decimal("0.25")),
    ],
    ids=["job", "stage", "run"],
)
def test_a_records_parameters_are_its_fields_json_wrapped_and_enums_as_values(value: Any) -> None:
    columns = Columns.of(type(value))
    enums = {name for name, _ in columns.enums}

    row = params(value, extra=1)

    assert list(row) == [field.name for field in attrs.fields(type(value))] + ["extra"]
    for name, given in attrs.asdict(value, recurse=False).items():
        if name in columns.jsons:
            assert isinstance(row[name], Jsonb)
            dumps = row[name].dumps or json.dumps  # the text is written as the row is sent
            assert json.loads(dumps(row[name].obj)) == to_json(given)
        elif name in enums:
            assert row[name] == given.value
        else:
            assert row[name] is given


def stdlib_rows_text(rows: list[dict[str, Any]]) -> str:
    """What ``rows_json`` wrote before orjson did most of the writing: the standard
    library's text, a JSON column's value in ``to_json`` form, times in ``isoformat``,
    durations as interval text and numerics as text."""

    def column(value: Any) -> Any:
        if isinstance(value, Jsonb):
            return to_json(value.obj)
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, timedelta):
            return _interval(value)
        if isinstance(value, Decimal):
            return str(value)
        raise TypeError(type(value).__name__)

    return json.dumps(rows, separators=(",", ":"), default=column)


def same_json(text: str | bytes, expected: str) -> bool:
    """Whether two texts hold the same JSON (NaN != NaN: their texts are compared)."""
    return json.dumps(json.loads(text)) == json.dumps(json.loads(expected))


@pytest.mark.parametrize("value", list(VALUES.values()), ids=list(VALUES))
def test_a_jsonb_column_is_written_as_the_standard_library_writes_it(value: Any) -> None:
    written = json_text(value)
    assert same_json(written, json.dumps(to_json(value)))
    assert (b"NaN" in written) == ("nan" in str(value))  # the server refuses it, as before


@pytest.mark.parametrize("value", list(VALUES.values()), ids=list(VALUES))
def test_rows_hold_what_the_standard_library_wrote_whatever_their_json_columns(
    value: Any,
) -> None:
    rows = [
        params(make_run("run-1", metadata=value, total_cost=Decimal("0.125"))),
        params(make_stage("run-1", "a", poll_interval=timedelta(seconds=-1, microseconds=5))),
        params(make_job("job-1", payload=value)),
    ]
    assert same_json(rows_json(rows), stdlib_rows_text(rows))


def test_rows_times_are_written_as_isoformat_writes_them() -> None:
    local_mean_time = timezone(timedelta(minutes=19, seconds=32))  # Amsterdam's, until 1937
    rows: list[dict[str, Any]] = [
        {"utc": T0, "whole": datetime(2026, 1, 2, tzinfo=UTC), "plus_two": T0.astimezone(PLUS_TWO)},
        {"seconds_in_the_offset": T0.astimezone(local_mean_time)},
    ]
    assert rows_json(rows) == stdlib_rows_text(rows)


@pytest.mark.parametrize(
    "column",
    [float("nan"), float("inf"), 2**64, "lone \ud800 surrogate"],
    ids=["nan", "infinity", "beyond 64 bits", "lone surrogate"],
)
def test_a_column_orjson_refuses_or_would_write_otherwise_is_written_as_before(
    column: Any,
) -> None:
    rows = [{"id": "a", "n": None}, {"id": "b", "n": column}]
    assert rows_json(rows) == stdlib_rows_text(rows)
