"""Concurrency and rate limits through the kernel (SPEC §15, §16.1 "Limits"): the key
function, bad definitions, ``run_until_idle`` on a fake clock, and
``max_running_runs``; on every store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
import pytest

from kernel import (
    CompletionCheck,
    DefinitionError,
    Limit,
    Rate,
    RunClaimPending,
    RunCreate,
    Status,
    WorkflowBuilder,
    define_async_batch_stage,
    define_stage,
)
from kernel.llm_batch import define_llm_batch_stage
from testing import FakeClock, create_test_kernel
from tests.harness import TK
from tests.workflows import NoConfig

MakeKernel = Callable[..., TK]


@attrs.frozen
class Order:
    customer: str
    n: int = 0


def limited_workflow(
    limit: Limit, seen: list[int], workflow_id: str = "orders", **options: Any
) -> Any:
    """One stage ``charge`` under ``limit``, recording each order's ``n`` as it runs."""

    def charge(ctx: Any) -> Order:
        seen.append(ctx.input.n)
        return ctx.input  # type: ignore[no-any-return]

    stage = define_stage(
        id="charge", name="Charge", input=Order, output=Order, config=NoConfig,
        execute=charge, limit=limit,
    )  # fmt: skip
    builder = WorkflowBuilder(workflow_id, "Orders", input=Order, output=Order, **options)
    return builder.pipe(stage).build()


def create(tk: TK, *orders: Order, workflow_id: str = "orders") -> list[str]:
    return [
        tk.dispatch(
            RunCreate(workflow_id=workflow_id, input={"customer": o.customer, "n": o.n})
        ).workflow_run_id
        for o in orders
    ]


# -- the key function --------------------------------------------------------------


def test_the_key_function_gets_the_typed_input_and_keys_each_job(make_tk: MakeKernel) -> None:
    keys: list[Order] = []

    def key(order: Order) -> str:
        keys.append(order)
        return f"psp:{order.customer}"

    seen: list[int] = []
    tk = make_tk(limited_workflow(Limit(key, max_running=1), seen))
    (run_id,) = create(tk, Order("acme", 7))
    tk.run_until_idle()
    assert keys == [Order("acme", 7)]  # once, at enqueue; not again when leased
    (job,) = tk.store.get_jobs(run_id)
    assert (job.limit_key, job.limit_max_running, job.status.value) == ("psp:acme", 1, "COMPLETED")


@pytest.mark.parametrize(
    ("key", "named"),
    [
        (lambda order: 1 / 0, "limit key function raised ZeroDivisionError: division by zero"),
        (lambda order: 42, "limit key function must return a non-empty str, got 42"),
        (lambda order: "", "limit key function must return a non-empty str, got ''"),
    ],
)
def test_a_key_function_that_fails_fails_the_stage_for_good(
    make_tk: MakeKernel, key: Callable[[Order], Any], named: str
) -> None:
    """The stage fails at its first attempt, not retried, naming the stage and the
    error; its code never runs; the other runs go on."""
    seen: list[int] = []
    broken = limited_workflow(Limit(key, max_running=1), seen)
    fine = limited_workflow(Limit("ok", max_running=1), seen, workflow_id="fine")
    tk = make_tk(broken, fine)
    (bad,) = create(tk, Order("acme", 1))
    (good,) = create(tk, Order("acme", 2), workflow_id="fine")
    tk.run_until_idle()
    assert seen == [2]
    run = tk.store.get_run(bad)
    assert run is not None and run.status == Status.FAILED
    assert run.error == f"LIMIT_KEY_ERROR: stage 'charge': {named}"
    (stage,) = tk.store.get_stages(bad)
    assert (stage.status, stage.attempt) == (Status.FAILED, 1)
    other = tk.store.get_run(good)
    assert other is not None and other.status == Status.COMPLETED


# -- bad definitions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Limit("k", max_running=0), "Limit.max_running must be an int >= 1, got 0"),
        (lambda: Limit("k", max_running=-2), "Limit.max_running must be an int >= 1, got -2"),
        (lambda: Limit("k", max_running=True), "Limit.max_running must be an int >= 1, got True"),
        (lambda: Limit("k"), "Limit('k') limits nothing: give max_running=, rate= or both"),
        (lambda: Limit("", max_running=1), "Limit.key must be a non-empty str"),
        (lambda: Limit(3, max_running=1), "Limit.key must be a non-empty str"),  # type: ignore[arg-type]
        (lambda: Limit("k", rate=5), "Limit.rate must be a Rate(...) or None, got 5"),  # type: ignore[arg-type]
        (lambda: Rate(0, per=timedelta(seconds=1)), "Rate.count must be an int >= 1, got 0"),
        (lambda: Rate(1, per=timedelta(0)), "Rate.per must be a positive timedelta, got "),
        (lambda: Rate(1, per=timedelta(seconds=-1)), "Rate.per must be a positive timedelta"),
        (lambda: Rate(1, per=60), "Rate.per must be a positive timedelta, got 60"),  # type: ignore[arg-type]
    ],
)
def test_bad_limits_are_refused_naming_the_field_and_value(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(DefinitionError) as raised:
        make()
    assert message in str(raised.value)


def test_every_stage_definer_takes_a_limit_and_checks_it() -> None:
    limit = Limit("openai", rate=Rate(500, per=timedelta(minutes=1)))
    common: dict[str, Any] = {"name": "S", "input": None, "output": Order, "config": NoConfig}
    plain = define_stage(id="a", execute=lambda ctx: Order("x"), limit=limit, **common)
    batch = define_async_batch_stage(
        id="b", execute=lambda ctx: Order("x"),
        check_completion=lambda s, ctx: CompletionCheck(ready=False), limit=limit, **common,
    )  # fmt: skip
    llm = define_llm_batch_stage(
        id="c", provider="p", build=lambda ctx: [], collect=lambda ctx, r: Order("x"),
        limit=limit, **common,
    )  # fmt: skip
    assert plain.limit is batch.limit is llm.limit is limit
    with pytest.raises(DefinitionError, match=r"stage 'a': limit must be a Limit\(...\) or None"):
        define_stage(id="a", execute=lambda ctx: Order("x"), limit=3, **common)  # type: ignore[call-overload]


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_bad_max_running_runs_is_a_definition_error(value: Any) -> None:
    with pytest.raises(DefinitionError) as raised:
        WorkflowBuilder("w", "W", input=Order, output=Order, max_running_runs=value)
    assert str(raised.value) == (
        f"workflow 'w': max_running_runs must be an int >= 1 or None, got {value!r}"
    )


# -- run_until_idle and the fake clock ---------------------------------------------------


def test_run_until_idle_jumps_the_clock_to_each_moment_the_rate_allows(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """``Rate(2, per=1 min)``: five orders run two at t0, two at t0 + 1 min, the
    last at t0 + 2 min; the clock stops there."""
    seen: list[int] = []
    rate = Limit("psp", rate=Rate(2, per=timedelta(minutes=1)))
    tk = make_tk(limited_workflow(rate, seen))
    start = clock.now()
    run_ids = create(tk, *(Order("acme", n) for n in range(5)))
    assert tk.run_until_idle() == 5
    assert sorted(seen) == [0, 1, 2, 3, 4]
    assert clock.now() - start == timedelta(minutes=2)
    started = sorted(
        stage.started_at - start  # type: ignore[operator]
        for run_id in run_ids
        for stage in tk.store.get_stages(run_id)
    )
    minute = timedelta(minutes=1)
    assert started == [timedelta(0), timedelta(0), minute, minute, 2 * minute]


def test_run_until_idle_returns_when_a_full_key_waits_on_a_lease_it_cannot_end(
    make_tk: MakeKernel,
) -> None:
    """Another worker holds the key's only slot: this kernel's job of that key stays
    queued, and run_until_idle returns instead of spinning."""
    seen: list[int] = []
    workflow = limited_workflow(Limit("psp", max_running=1), seen)
    tk = make_tk(workflow)
    _, second = create(tk, Order("a", 1), Order("b", 2))
    tk.dispatch(RunClaimPending(worker_id="elsewhere", max_claims=10))
    with tk.store.transaction() as tx:
        held = tx.lease_next_job("elsewhere", tk.clock.now())  # a worker that then died
    assert held is not None
    assert tk.run_until_idle() == 0
    assert seen == []
    assert [job.status.value for job in tk.store.get_jobs(second)] == ["QUEUED"]


# -- max_running_runs ------------------------------------------------------------------------


def test_max_running_runs_leaves_the_rest_pending_and_other_workflows_pass(
    make_tk: MakeKernel,
) -> None:
    seen: list[int] = []
    capped = limited_workflow(Limit("k", max_running=100), seen, max_running_runs=2)
    free = limited_workflow(Limit("j", max_running=100), seen, workflow_id="free")
    tk = make_tk(capped, free)
    create(tk, *(Order("a", n) for n in range(5)))
    (other,) = create(tk, Order("b", 99), workflow_id="free")
    claimed = tk.dispatch(RunClaimPending(worker_id="w", max_claims=3)).claimed
    assert len(claimed) == 3
    assert other in {c.workflow_run_id for c in claimed}
    statuses = sorted(run.status.value for run in tk.store.list_runs(workflow_id="orders"))
    assert statuses == ["PENDING"] * 3 + ["RUNNING"] * 2
    # Another claim finds the workflow full and claims nothing of it.
    assert tk.dispatch(RunClaimPending(worker_id="w", max_claims=10)).claimed == []
    tk.run_until_idle()
    assert sorted(seen) == [0, 1, 2, 3, 4, 99]


def test_max_running_runs_counts_running_runs_only() -> None:
    """A run waiting for a signal (SUSPENDED) holds no slot."""
    from kernel import define_signal_stage

    approve = define_signal_stage(id="approve", name="Approve", signal="ok", output=Order)
    workflow = (
        WorkflowBuilder("wait", "Wait", input=Order, output=Order, max_running_runs=1)
        .pipe(approve)
        .build()
    )
    tk = create_test_kernel(workflow)
    create(tk, Order("a"), Order("b"), workflow_id="wait")
    tk.run_until_idle()
    assert [run.status for run in tk.store.list_runs()] == [Status.SUSPENDED] * 2
