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
from adapters.postgres.rows import JsonbLoader, params, record, records
from kernel.convert import converter, to_json
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.status import JobStatus, Status
from testing.store_cases.base import make_job, make_run, make_stage

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
            assert row[name].obj == to_json(given)
            assert given in (None, {}) or row[name].obj is not given  # detached
        elif name in enums:
            assert row[name] == given.value
        else:
            assert row[name] is given
