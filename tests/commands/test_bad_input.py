"""Bad input is refused with a specific error that names the field or stage and
the value, and leaves nothing behind (SPEC §6.5, §10.1)."""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs
import pytest

from kernel import (
    InvalidConfigError,
    InvalidInputError,
    InvalidStateError,
    KernelError,
    RunClaimPending,
    RunCreate,
    RunNotFoundError,
    RunRerunFrom,
    StageNotFoundError,
    Status,
    WorkflowNotFoundError,
    define_stage,
)
from kernel.ports import Store
from tests.harness import TK, MakeKernel, idempotency_record, run_of
from tests.workflows import AddConfig, Calls, Doc, NoConfig, pipeline

KEY = "request-1"


def count_pages(calls: Calls) -> Any:
    """A Doc → Doc stage with an ``amount`` config, for config errors."""

    def execute(ctx: Any) -> Doc:
        calls.hit("count")
        return ctx.input  # type: ignore[no-any-return]

    return define_stage(
        id="count", name="Count", input=Doc, output=Doc, config=AddConfig, execute=execute
    )


def docs_kernel(make_tk: MakeKernel) -> TK:
    title = define_stage(
        id="title",
        name="Title",
        input=Doc,
        output=Doc,
        config=NoConfig,
        execute=lambda ctx: ctx.input,
    )
    return make_tk(pipeline("docs", count_pages(Calls()), title, input=Doc))


def assert_nothing_written(store: Store) -> None:
    assert store.list_runs() == []
    assert store.get_outbox() == []
    assert idempotency_record(store, KEY, "run.create") is None


GOOD_INPUT = {"title": "Report", "pages": 10}


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        pytest.param(
            {"workflow_id": "nope"},
            WorkflowNotFoundError,
            "workflow 'nope' is not registered",
            id="unknown workflow",
        ),
        pytest.param(
            {"input": {"title": "Report", "pages": "ten"}},
            InvalidInputError,
            "invalid input: input.pages: expected int, got 'ten'",
            id="wrong field type",
        ),
        pytest.param(
            {"input": {"title": "Report"}},
            InvalidInputError,
            "invalid input: input.pages: required field missing",
            id="missing field",
        ),
        pytest.param(
            {"input": {**GOOD_INPUT, "author": "me"}},
            InvalidInputError,
            "invalid input: input: unknown field 'author'",
            id="unknown input field",
        ),
        pytest.param(
            {"input": "ten pages"},
            InvalidInputError,
            "invalid input: input: expected a mapping, got 'ten pages'",
            id="input not a mapping",
        ),
        pytest.param(
            {"input": 10},
            InvalidInputError,
            "invalid input: input: expected a mapping, got 10",
            id="input a number",
        ),
        pytest.param(
            {"input": None},
            InvalidInputError,
            "invalid input: input: expected a mapping, got None",
            id="input missing",
        ),
        pytest.param(
            {"input": {"title": 7, "pages": True}},
            InvalidInputError,
            "invalid input: input.title: expected str, got 7; input.pages: expected int, got True",
            id="every input problem",
        ),
        pytest.param(
            {"config": {"count": {"bogus": 1}}},
            InvalidConfigError,
            "invalid config: config.count: unknown field 'bogus'",
            id="unknown config key",
        ),
        pytest.param(
            {"config": {"count": {"amount": "lots"}}},
            InvalidConfigError,
            "invalid config: config.count.amount: expected int, got 'lots'",
            id="invalid config value",
        ),
        pytest.param(
            {"config": {"count": 3}},
            InvalidConfigError,
            "invalid config: config.count: expected a mapping, got 3",
            id="config entry not a mapping",
        ),
        pytest.param(
            {"config": 3},
            InvalidConfigError,
            "invalid config: config: expected a mapping of stage id to values, got 3",
            id="config not a mapping",
        ),
        pytest.param(
            {"config": {"nope": {}}},
            InvalidConfigError,
            "invalid config: config: unknown stage 'nope' (workflow 'docs' has 'count', 'title')",
            id="unknown stage in config",
        ),
    ],
)
def test_bad_create_raises_a_specific_error_and_writes_nothing(
    make_tk: MakeKernel, fields: dict[str, Any], error: type[KernelError], message: str
) -> None:
    """SPEC §5.1, §6.5: the message names the field path and the bad value; no run,
    no outbox event and no idempotency key is left behind."""
    tk = docs_kernel(make_tk)
    values: dict[str, Any] = {"workflow_id": "docs", "input": GOOD_INPUT, **fields}

    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        tk.dispatch(RunCreate(idempotency_key=KEY, **values))

    assert_nothing_written(tk.store)


@attrs.frozen
class Order:
    tags: list[str]
    counts: dict[str, int]
    mode: Literal["fast", "slow"] = "fast"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param(
            {"tags": "urgent", "counts": {}},
            "input.tags: expected a list, got 'urgent'",
            id="string for a list",
        ),
        pytest.param(
            {"tags": {"a": 1}, "counts": {}},
            "input.tags: expected a list, got {'a': 1}",
            id="mapping for a list",
        ),
        pytest.param(
            {"tags": [], "counts": 3},
            "input.counts: expected a mapping, got 3",
            id="number for a mapping",
        ),
        pytest.param(
            {"tags": [], "counts": {}, "mode": "turbo"},
            "input.mode: expected one of 'fast', 'slow', got 'turbo'",
            id="value outside a literal",
        ),
    ],
)
def test_create_names_the_path_and_value_inside_collections(
    make_tk: MakeKernel, bad: dict[str, Any], message: str
) -> None:
    """SPEC §10.1: lists, mappings and literals are checked as strictly as scalars, and
    the message names the field path and the bad value (a string is not a list of
    its characters)."""
    stage = define_stage(
        id="order",
        name="Order",
        input=Order,
        output=Order,
        config=NoConfig,
        execute=lambda c: c.input,
    )
    tk = make_tk(pipeline("orders", stage, input=Order))

    with pytest.raises(InvalidInputError) as raised:
        tk.dispatch(RunCreate(workflow_id="orders", input=bad))

    assert raised.value.problems == (message,)
    assert tk.store.list_runs() == []


def test_invalid_input_lists_its_problems(make_tk: MakeKernel) -> None:
    """SPEC §6.5: ``InvalidInputError`` carries the field paths for programs to read."""
    tk = docs_kernel(make_tk)

    with pytest.raises(InvalidInputError) as raised:
        tk.dispatch(RunCreate(workflow_id="docs", input={"title": 1, "pages": "x"}))

    assert raised.value.problems == (
        "input.title: expected str, got 1",
        "input.pages: expected int, got 'x'",
    )
    assert raised.value.code == "INVALID_INPUT"


def test_invalid_config_lists_its_problems(make_tk: MakeKernel) -> None:
    """SPEC §6.5: ``InvalidConfigError`` carries one line per problem."""
    tk = docs_kernel(make_tk)

    with pytest.raises(InvalidConfigError) as raised:
        tk.dispatch(
            RunCreate(
                workflow_id="docs",
                input=GOOD_INPUT,
                config={"count": {"amount": 1.5}, "extra": {}},
            )
        )

    assert raised.value.problems == (
        "config: unknown stage 'extra' (workflow 'docs' has 'count', 'title')",
        "config.count.amount: expected int, got 1.5",
    )
    assert raised.value.code == "INVALID_CONFIG"


def test_a_valid_create_after_bad_ones_is_the_only_record(make_tk: MakeKernel) -> None:
    """SPEC §6.5: refused commands leave no trace next to the accepted one."""
    tk = docs_kernel(make_tk)
    for bad in ({"title": "x"}, "x", {"title": "x", "pages": "y"}):
        with pytest.raises(InvalidInputError):
            tk.dispatch(RunCreate(workflow_id="docs", input=bad, idempotency_key=KEY))

    run_id = tk.dispatch(
        RunCreate(workflow_id="docs", input=GOOD_INPUT, idempotency_key=KEY)
    ).workflow_run_id

    assert [run.id for run in tk.store.list_runs()] == [run_id]
    assert [e.sequence for e in tk.store.get_outbox()] == [1]


# -- rerun ------------------------------------------------------------------------


def start_docs(tk: TK) -> str:
    run_id = tk.dispatch(RunCreate(workflow_id="docs", input=GOOD_INPUT)).workflow_run_id
    tk.dispatch(RunClaimPending(worker_id="w1"))
    return run_id


def snapshot(tk: TK, run_id: str) -> tuple[object, ...]:
    store = tk.store
    return (
        store.get_run(run_id),
        store.get_stages(run_id),
        store.get_jobs(run_id),
        store.get_outbox(run_id),
    )


def test_rerun_of_a_running_run_raises_invalid_state(make_tk: MakeKernel) -> None:
    """SPEC §10.1: the message names the run, its status and the stage."""
    tk = docs_kernel(make_tk)
    run_id = start_docs(tk)
    before = snapshot(tk, run_id)

    message = (
        f"run {run_id!r} is RUNNING: only COMPLETED or FAILED runs can be rerun from stage 'title'"
    )
    with pytest.raises(InvalidStateError, match=f"^{re.escape(message)}$"):
        tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="title"))

    assert snapshot(tk, run_id) == before


def test_rerun_from_an_unknown_stage_raises_stage_not_found(make_tk: MakeKernel) -> None:
    """SPEC §10.1: the message names the stage and the workflow."""
    tk = docs_kernel(make_tk)
    run_id = start_docs(tk)
    tk.run_until_idle()
    assert run_of(tk.store, run_id).status == Status.COMPLETED
    before = snapshot(tk, run_id)

    with pytest.raises(
        StageNotFoundError, match=re.escape("stage 'summary' is not part of workflow 'docs'")
    ) as raised:
        tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="summary"))

    assert (raised.value.stage_id, raised.value.workflow_id) == ("summary", "docs")
    assert snapshot(tk, run_id) == before


def test_rerun_of_a_missing_run_raises_run_not_found(make_tk: MakeKernel) -> None:
    """SPEC §10.1: the message names the run id; nothing is created."""
    tk = docs_kernel(make_tk)

    with pytest.raises(
        RunNotFoundError, match=re.escape("workflow run 'ghost' does not exist")
    ) as raised:
        tk.dispatch(RunRerunFrom(workflow_run_id="ghost", from_stage_id="title"))

    assert raised.value.run_id == "ghost"
    assert tk.store.list_runs() == []
    assert tk.store.get_outbox() == []
