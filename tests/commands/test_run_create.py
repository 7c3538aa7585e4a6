"""``run.create`` (SPEC §5.1)."""

from __future__ import annotations

import re
from typing import TypedDict

import pytest

from kernel import (
    InvalidConfigError,
    InvalidInputError,
    RunCreate,
    Status,
    WorkflowNotFoundError,
    define_stage,
)
from testing import FakeClock
from tests.harness import T0, MakeKernel, event_types, outbox, run_of
from tests.workflows import Calls, NoConfig, linear, pipeline


def test_create_returns_a_pending_run(make_tk: MakeKernel) -> None:
    """SPEC §5.1: the result carries the new run's id and its PENDING status."""
    tk = make_tk(linear(Calls()))

    result = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 1}))

    assert result.status == Status.PENDING
    run = run_of(tk.store, result.workflow_run_id)
    assert (run.status, run.workflow_id, run.workflow_name) == (
        Status.PENDING,
        "linear",
        "Linear",
    )
    assert (run.created_at, run.started_at, run.version) == (T0, None, 1)


def test_create_stores_the_input_in_json_form(make_tk: MakeKernel) -> None:
    """SPEC §3.2, §10.1: a record holds data in JSON form, structured and re-checked."""
    tk = make_tk(linear(Calls()))

    run_id = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 41})).workflow_run_id

    assert run_of(tk.store, run_id).input == {"value": 41}


def test_create_merges_each_stage_config_under_its_defaults(make_tk: MakeKernel) -> None:
    """SPEC §4.3: every stage gets an entry: its defaults, overridden by the given values."""
    tk = make_tk(linear(Calls()))

    run_id = tk.dispatch(
        RunCreate(workflow_id="linear", input={"value": 1}, config={"second": {"amount": 5}})
    ).workflow_run_id

    assert run_of(tk.store, run_id).config == {
        "first": {"amount": 1},
        "second": {"amount": 5},
        "third": {"amount": 1},
    }


def test_create_keeps_priority_and_metadata(make_tk: MakeKernel) -> None:
    """SPEC §3.2: priority (default 5) and metadata are stored on the run."""
    tk = make_tk(linear(Calls()))

    default = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 1}))
    chosen = tk.dispatch(
        RunCreate(workflow_id="linear", input={"value": 1}, priority=9, metadata={"owner": "ops"})
    )

    assert run_of(tk.store, default.workflow_run_id).priority == 5
    run = run_of(tk.store, chosen.workflow_run_id)
    assert (run.priority, run.metadata) == (9, {"owner": "ops"})


def test_create_writes_workflow_created_to_the_outbox(make_tk: MakeKernel) -> None:
    """SPEC §5.1, §6.2: one ``workflow:created`` event, sequence 1, unpublished."""
    tk = make_tk(linear(Calls()))

    run_id = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 1})).workflow_run_id

    [event] = outbox(tk.store, run_id)
    assert (event.sequence, event.event_type) == (1, "workflow:created")
    assert event.payload == {
        "type": "workflow:created",
        "workflow_run_id": run_id,
        "timestamp": T0.isoformat(),
        "workflow_id": "linear",
    }
    assert event.causation_id
    assert (event.occurred_at, event.published_at, event.retry_count, event.dlq_at) == (
        T0,
        None,
        0,
        None,
    )


def test_create_neither_starts_stages_nor_queues_jobs(make_tk: MakeKernel) -> None:
    """SPEC §5.1, §5.2: stages and jobs appear only when a worker claims the run."""
    calls = Calls()
    tk = make_tk(linear(calls))

    run_id = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 1})).workflow_run_id

    assert tk.store.get_stages(run_id) == []
    assert tk.store.get_jobs(run_id) == []
    assert calls.total == 0


def test_create_stamps_the_run_with_the_clock(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §7: time comes from the Clock port, never from the kernel itself."""
    tk = make_tk(linear(Calls()))
    clock.set(T0.replace(year=2030))

    run_id = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 1})).workflow_run_id

    assert run_of(tk.store, run_id).created_at == T0.replace(year=2030)


def test_create_of_an_unknown_workflow_raises_workflow_not_found(make_tk: MakeKernel) -> None:
    """SPEC §5.1, §6.5: the workflow must be registered."""
    tk = make_tk(linear(Calls()))

    with pytest.raises(WorkflowNotFoundError) as raised:
        tk.dispatch(RunCreate(workflow_id="missing", input={"value": 1}))

    assert raised.value.code == "WORKFLOW_NOT_FOUND"
    assert tk.store.list_runs() == []


def test_create_with_invalid_input_raises_invalid_input(make_tk: MakeKernel) -> None:
    """SPEC §5.1: the input must structure into the workflow's input type."""
    tk = make_tk(linear(Calls()))

    with pytest.raises(InvalidInputError) as raised:
        tk.dispatch(RunCreate(workflow_id="linear", input={"value": "one"}))

    assert raised.value.problems == ("input.value: expected int, got 'one'",)
    assert tk.store.get_outbox() == []


def test_create_with_invalid_config_raises_invalid_config(make_tk: MakeKernel) -> None:
    """SPEC §4.3: invalid config is rejected at run.create, never replaced later."""
    tk = make_tk(linear(Calls()))

    with pytest.raises(InvalidConfigError) as raised:
        tk.dispatch(
            RunCreate(workflow_id="linear", input={"value": 1}, config={"first": {"amount": "x"}})
        )

    assert raised.value.problems == ("config.first.amount: expected int, got 'x'",)
    assert tk.store.list_runs() == []


def test_create_reports_every_problem_at_once(make_tk: MakeKernel) -> None:
    """SPEC §6.5: config errors list each field path, not only the first."""
    tk = make_tk(linear(Calls()))

    with pytest.raises(InvalidConfigError) as raised:
        tk.dispatch(
            RunCreate(
                workflow_id="linear",
                input={"value": 1},
                config={"first": {"amount": "x"}, "third": {"amount": None}},
            )
        )

    assert raised.value.problems == (
        "config.first.amount: expected int, got 'x'",
        "config.third.amount: expected int, got None",
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"workflow_id": ""}, "workflow_id: expected a non-empty string, got ''"),
        ({"priority": -1}, "priority: expected an int >= 0, got -1"),
        ({"idempotency_key": ""}, "idempotency_key: expected a non-empty string, got ''"),
        ({"metadata": ["tag"]}, "metadata: expected a mapping, got ['tag']"),
    ],
)
def test_create_command_refuses_bad_fields_when_built(
    fields: dict[str, object], message: str
) -> None:
    """SPEC §5: commands are checked when built; the message names field and value."""
    values: dict[str, object] = {"workflow_id": "linear", "input": {"value": 1}, **fields}

    with pytest.raises(ValueError, match=re.escape(message)):
        RunCreate(**values)  # type: ignore[arg-type]


def test_create_leaves_other_runs_alone(make_tk: MakeKernel) -> None:
    """SPEC §3.2: outbox sequences are per run and start at 1 for each."""
    tk = make_tk(linear(Calls()))

    first = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 1})).workflow_run_id
    second = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 2})).workflow_run_id

    assert first != second
    assert [e.sequence for e in outbox(tk.store, first)] == [1]
    assert [e.sequence for e in outbox(tk.store, second)] == [1]
    assert event_types(tk.store, second) == ["workflow:created"]


class Pages(TypedDict):
    title: str
    pages: int


def test_a_typed_dict_input_is_structured_and_checked(make_tk: MakeKernel) -> None:
    """SPEC §4.1, §5.1: an input (or output) type need not be an attrs class: a
    ``TypedDict`` is checked like one, and a run of it completes."""
    stage = define_stage(
        id="count",
        name="Count",
        input=Pages,
        output=Pages,
        config=NoConfig,
        execute=lambda c: c.input,
    )
    tk = make_tk(pipeline("typed", stage, input=Pages))

    with pytest.raises(InvalidInputError) as raised:
        tk.dispatch(RunCreate(workflow_id="typed", input={"title": "Report", "pages": "ten"}))
    run_id = tk.dispatch(
        RunCreate(workflow_id="typed", input={"title": "Report", "pages": 10})
    ).workflow_run_id
    tk.run_until_idle()

    assert raised.value.problems == ("input.pages: expected int, got 'ten'",)
    run = run_of(tk.store, run_id)
    assert (run.status, run.output) == (Status.COMPLETED, {"title": "Report", "pages": 10})
