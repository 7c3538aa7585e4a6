"""``kernel.copying.evolve`` makes exactly what ``attrs.evolve`` makes, faster."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import attrs
import pytest
from attrs import define, field, frozen
from hypothesis import given
from hypothesis import strategies as st

from kernel import Status
from kernel.copying import evolve
from kernel.records import OutboxEvent
from kernel.status import JobStatus
from testing.store_cases.base import T0, make_job, make_run, make_stage

RECORDS: list[Any] = [
    make_run(status=Status.RUNNING, total_cost=Decimal("0.5")),
    make_stage("run-1", "extract", poll_interval=timedelta(seconds=5)),
    make_job("job-1"),
    OutboxEvent(
        id="e",
        workflow_run_id="r",
        sequence=1,
        event_type="stage:started",
        payload={"stageId": "a"},
        causation_id="c",
        occurred_at=T0,
    ),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda record: type(record).__name__)
def test_a_record_copied_with_changes_equals_what_attrs_makes(record: Any) -> None:
    names = [a.name for a in attrs.fields(type(record))]
    for name in names:
        changes = {name: getattr(record, name)}
        assert evolve(record, **changes) == attrs.evolve(record, **changes)
    assert evolve(record) == record and evolve(record) is not record
    moved = evolve(record, id="other")
    assert moved.id == "other" and type(moved) is type(record)
    assert all(getattr(moved, name) == getattr(record, name) for name in names if name != "id")


@frozen
class _Checked:
    count: int = field(converter=int, validator=attrs.validators.ge(0))
    _secret: str = "s"
    derived: str = field(init=False)

    @derived.default
    def _derived(self) -> str:
        return f"{self.count}:{self._secret}"


def test_converters_validators_aliases_and_init_false_fields_behave_as_with_attrs() -> None:
    checked = _Checked(1, secret="x")
    assert evolve(checked, count="7") == attrs.evolve(checked, count="7") == _Checked(7, "x")
    assert evolve(checked, secret="y").derived == "1:y"  # init=False: made again
    with pytest.raises(ValueError, match="must be >= 0"):
        evolve(checked, count=-1)


def test_an_unknown_field_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="'statuss'"):
        evolve(RECORDS[2], statuss=JobStatus.LEASED)


def test_only_attrs_values_can_be_copied() -> None:
    with pytest.raises(attrs.exceptions.NotAnAttrsClassError):
        evolve(cast(Any, object()))


@define
class _Mutable:
    a: int
    b: list[int] = field(factory=list)


@given(a=st.integers(), b=st.lists(st.integers()), change_a=st.booleans())
def test_mutable_classes_are_copied_as_attrs_copies_them(
    a: int, b: list[int], change_a: bool
) -> None:
    value = _Mutable(a, b)
    changes: dict[str, Any] = {"a": a + 1} if change_a else {"b": [*b, 1]}
    ours, theirs = evolve(value, **changes), attrs.evolve(value, **changes)
    assert ours == theirs
    if not change_a:
        assert ours.b is not value.b
    else:
        assert ours.b is value.b  # unchanged fields are shared, not copied
