"""Cancelling stops user code; rerunning keeps earlier work (SPEC §5.4, §5.5)."""

from __future__ import annotations

from decimal import Decimal

from kernel import RunCancel, RunRerunFrom, StageContext, Status
from tests.harness import TK, MakeKernel, create, run_of, start
from tests.workflows import (
    Calls,
    NoConfig,
    Num,
    add,
    costly,
    custom,
    fan_out,
    linear,
    pipeline,
)


def test_cancel_between_stages_stops_all_further_user_code(make_tk: MakeKernel) -> None:
    """SPEC §5.4: after the first stage, cancel; no later stage ever runs."""
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = start(tk, "linear")
    tk.kernel.execute_next_job("w1")

    tk.dispatch(RunCancel(workflow_run_id=run_id))
    tk.run_until_idle()

    assert dict(calls.counts) == {"first": 1}
    assert run_of(tk.store, run_id).status == Status.CANCELLED


def test_cancel_from_inside_a_parallel_group_stops_its_sibling(make_tk: MakeKernel) -> None:
    """SPEC §5.4: a sibling still queued in the same group never runs."""
    calls = Calls()
    kernels: list[TK] = []

    def cancel_run(ctx: StageContext[Num, NoConfig]) -> Num:
        calls.hit("canceller")
        kernels[0].dispatch(RunCancel(workflow_run_id=ctx.workflow_run_id))
        return ctx.input

    tk = make_tk(pipeline("abort", [custom("canceller", cancel_run), add(calls, "sibling")]))
    kernels.append(tk)
    run_id = create(tk, "abort")

    tk.run_until_idle()

    assert dict(calls.counts) == {"canceller": 1}
    statuses = {s.stage_id: s.status for s in tk.store.get_stages(run_id)}
    assert statuses == {"canceller": Status.CANCELLED, "sibling": Status.CANCELLED}


def test_rerun_keeps_earlier_outputs_and_reruns_later_stages(make_tk: MakeKernel) -> None:
    """SPEC §5.5: earlier stages are not executed again; later ones are."""
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = create(tk, "linear", 10)
    tk.run_until_idle()
    assert run_of(tk.store, run_id).output == {"value": 13}

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="second"))
    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.status, run.output) == (Status.COMPLETED, {"value": 13})
    assert dict(calls.counts) == {"first": 1, "second": 2, "third": 2}


def test_rerun_reads_earlier_outputs_through_require(make_tk: MakeKernel) -> None:
    """SPEC §5.5: a rerun stage after a parallel group still finds the kept outputs."""
    calls = Calls()
    tk = make_tk(fan_out(calls))
    run_id = create(tk, "fan-out", 1, config={"right": {"amount": 10}})
    tk.run_until_idle()

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="join"))
    tk.run_until_idle()

    assert run_of(tk.store, run_id).output == {"value": 13}
    assert dict(calls.counts) == {"start": 1, "left": 1, "right": 1, "join": 2}


def test_rerun_adds_the_rerun_stages_spend_to_what_was_paid(make_tk: MakeKernel) -> None:
    """SPEC §5.5, §12.1: totals are running counters: the first ``b`` was paid for, and
    its rerun is paid again; the kept stage ``a`` is not counted twice."""
    calls = Calls()
    tk = make_tk(pipeline("paid", costly(calls, "a", 0.5, 10), costly(calls, "b", 0.25, 1)))
    run_id = create(tk, "paid")
    tk.run_until_idle()

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="b"))
    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.total_cost, run.total_tokens) == (Decimal("1.00"), 12)
