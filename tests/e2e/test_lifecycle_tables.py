"""Every status change the engine makes is one its lifecycle tables allow
(SPEC §3.1; the tables live in ``kernel/status.py``).

A recording store wraps the real one and notes, for each run or stage update,
the status before and after, while whole scenarios run through the kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, cast

import pytest

from kernel import (
    LeaseReapStale,
    RunCancel,
    RunRerunFrom,
    StageContext,
    Status,
)
from kernel.effects import InsertRun, InsertStage, StoreEffect, UpdateRun, UpdateStage
from kernel.ports import Store, StoreTransaction
from kernel.status import can_run_move, can_stage_move
from testing import CollectingEventSink, FakeClock, create_test_kernel
from tests.harness import T0, TK, create, start
from tests.workflows import (
    Batch,
    Calls,
    NoConfig,
    Num,
    WorkerCrash,
    batch,
    crashing,
    custom,
    failing,
    fan_out,
    flaky,
    linear,
    pipeline,
)

Move = tuple[str, Status | None, Status]


class RecordingTransaction:
    """Applies effects one by one, noting each status change before applying it."""

    def __init__(self, inner: StoreTransaction, moves: list[Move]) -> None:
        self._inner = inner
        self._moves = moves

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def apply(self, effects: Sequence[StoreEffect]) -> None:
        for effect in effects:
            match effect:
                case InsertRun(run):
                    self._moves.append(("run", None, run.status))
                case UpdateRun(run, _):
                    before = self._inner.get_run(run.id)
                    assert before is not None
                    self._moves.append(("run", before.status, run.status))
                case InsertStage(stage):
                    self._moves.append(("stage", None, stage.status))
                case UpdateStage(stage, _):
                    stages = self._inner.get_stages(stage.workflow_run_id)
                    [old] = [s for s in stages if s.id == stage.id]
                    self._moves.append(("stage", old.status, stage.status))
            self._inner.apply([effect])


class RecordingStore:
    """A store whose transactions record status changes."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.moves: list[Move] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        with self._inner.transaction() as tx:
            yield cast(StoreTransaction, RecordingTransaction(tx, self.moves))


def pipeline_completes(tk: TK, clock: FakeClock) -> None:
    create(tk, "fan-out")
    tk.run_until_idle()


def stage_retries_then_fails(tk: TK, clock: FakeClock) -> None:
    create(tk, "doomed")
    tk.run_until_idle()


def stage_retries_then_succeeds(tk: TK, clock: FakeClock) -> None:
    create(tk, "shaky")
    tk.run_until_idle()


def batch_suspends_and_resumes(tk: TK, clock: FakeClock) -> None:
    create(tk, "batchy")
    tk.run_until_idle()


def batch_times_out(tk: TK, clock: FakeClock) -> None:
    create(tk, "slow-batch")
    tk.run_until_idle()


def cancel_between_stages_and_while_suspended(tk: TK, clock: FakeClock) -> None:
    first = start(tk, "linear")
    tk.kernel.execute_next_job("w")
    tk.dispatch(RunCancel(workflow_run_id=first))
    second = start(tk, "batchy")
    tk.kernel.execute_next_job("w")
    tk.dispatch(RunCancel(workflow_run_id=second))
    tk.dispatch(RunCancel(workflow_run_id=create(tk, "linear")))
    tk.run_until_idle()


def cancel_while_running(tk: TK, clock: FakeClock) -> None:
    create(tk, "selfish")
    tk.run_until_idle()


def rerun_completed_and_failed(tk: TK, clock: FakeClock) -> None:
    done, failed = create(tk, "linear"), create(tk, "doomed")
    tk.run_until_idle()
    tk.dispatch(RunRerunFrom(workflow_run_id=done, from_stage_id="second"))
    tk.dispatch(RunRerunFrom(workflow_run_id=failed, from_stage_id="bad"))
    tk.run_until_idle()


def reap_then_worker_lost(tk: TK, clock: FakeClock) -> None:
    start(tk, "crashy")
    for _ in range(2):
        with pytest.raises(WorkerCrash):
            tk.kernel.execute_next_job("doomed")
        clock.advance(timedelta(minutes=1))
        tk.dispatch(LeaseReapStale(stale_threshold_ms=1000, max_reaps=2))
    tk.run_until_idle()


SCENARIOS: dict[str, Callable[[TK, FakeClock], None]] = {
    f.__name__: f
    for f in (
        pipeline_completes,
        stage_retries_then_fails,
        stage_retries_then_succeeds,
        batch_suspends_and_resumes,
        batch_times_out,
        cancel_between_stages_and_while_suspended,
        cancel_while_running,
        rerun_completed_and_failed,
        reap_then_worker_lost,
    )
}


def every_workflow() -> list[Any]:
    calls = Calls()
    kernels: list[TK] = []

    def cancel_myself(ctx: StageContext[Num, NoConfig]) -> Num:
        kernels[0].dispatch(RunCancel(workflow_run_id=ctx.workflow_run_id))
        return ctx.input

    workflows = [
        fan_out(calls),
        linear(calls),
        pipeline("doomed", failing(calls, "bad")),
        pipeline("shaky", flaky(calls, "flaky", failures=2)),
        pipeline("batchy", batch(calls, Batch())),
        pipeline(
            "slow-batch",
            batch(calls, Batch(max_wait=timedelta(minutes=1), ready_on_check=None), "slow"),
        ),
        pipeline("selfish", custom("selfish", cancel_myself)),
        pipeline("crashy", crashing(calls, "crashy", crashes=2)),
    ]
    return [workflows, kernels]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_status_change_is_allowed_by_the_tables(store: Store, scenario: str) -> None:
    """SPEC §3.1: runs are born PENDING, stages PENDING or RUNNING, and every update
    moves along an edge of ``RUN_TRANSITIONS`` or ``STAGE_TRANSITIONS``."""
    recording = RecordingStore(store)
    clock = FakeClock(T0)
    workflows, kernels = every_workflow()
    tk = create_test_kernel(
        *workflows, store=cast(Store, recording), clock=clock, sink=CollectingEventSink()
    )
    kernels.append(tk)

    SCENARIOS[scenario](tk, clock)

    assert recording.moves, "the scenario changed no status at all"
    for kind, before, after in recording.moves:
        if before is None:
            allowed = {Status.PENDING} if kind == "run" else {Status.PENDING, Status.RUNNING}
            assert after in allowed, f"{kind} created as {after}"
        elif kind == "run":
            assert can_run_move(before, after), f"run moved {before} -> {after}"
        else:
            assert can_stage_move(before, after), f"stage moved {before} -> {after}"
