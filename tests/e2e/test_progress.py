"""Progress events are written in call order, before the stage's final event
(SPEC §3.3, §5.6)."""

from __future__ import annotations

from datetime import timedelta

from kernel import StageContext, StageProgress
from testing import CollectingEventSink, FakeClock
from tests.harness import MakeKernel, create, event_types, events_of
from tests.workflows import Calls, NoConfig, Num, add, custom, pipeline, progressing


def test_progress_events_arrive_in_order_before_stage_completed(
    make_tk: MakeKernel, sink: CollectingEventSink
) -> None:
    """SPEC §5.6: progress is collected in memory and written with the finish."""
    tk = make_tk(pipeline("busy", progressing(Calls(), "work"), add(Calls(), "after")))
    run_id = create(tk, "busy")

    tk.run_until_idle()

    types = event_types(tk.store, run_id)
    work = types[types.index("stage:started") : types.index("stage:completed") + 1]
    assert work == [
        "stage:started",
        "stage:progress",
        "stage:progress",
        "stage:progress",
        "stage:completed",
    ]
    assert [(e.progress, e.message, e.details) for e in sink.of_type(StageProgress)] == [
        (0.25, "step 1", {"step": 1}),
        (0.5, "step 2", {"step": 2}),
        (1.0, "step 3", {"step": 3}),
    ]


def test_progress_payloads_name_the_stage(make_tk: MakeKernel) -> None:
    """SPEC §3.3: ``stage:progress`` carries stage_id, progress, message and details."""
    tk = make_tk(pipeline("busy", progressing(Calls(), "work", steps=[0.75])))
    run_id = create(tk, "busy")

    tk.run_until_idle()

    [event] = events_of(tk.store, run_id, "stage:progress")
    assert {k: v for k, v in event.payload.items() if k != "timestamp"} == {
        "type": "stage:progress",
        "workflow_run_id": run_id,
        "stage_id": "work",
        "progress": 0.75,
        "message": "step 1",
        "details": {"step": 1},
    }


def test_progress_of_a_failed_attempt_is_still_reported(make_tk: MakeKernel) -> None:
    """SPEC §5.6: progress made before a failure comes before ``stage:failed``."""

    def half_then_fail(ctx: StageContext[Num, NoConfig]) -> Num:
        ctx.progress(0.5, "halfway")
        raise RuntimeError("tripped")

    tk = make_tk(pipeline("trip", custom("trip", half_then_fail)))
    run_id = create(tk, "trip")

    tk.run_until_idle()

    types = event_types(tk.store, run_id)
    assert types[2:5] == ["stage:started", "stage:progress", "stage:failed"]


def test_progress_outside_zero_to_one_fails_the_attempt(make_tk: MakeKernel) -> None:
    """SPEC §3.3: progress is a number from 0 to 1; anything else is a bug in the stage."""

    def overshoot(ctx: StageContext[Num, NoConfig]) -> Num:
        ctx.progress(1.5, "too far")
        return ctx.input

    tk = make_tk(pipeline("over", custom("over", overshoot)))
    run_id = create(tk, "over")

    tk.run_until_idle()

    [failed, *_] = events_of(tk.store, run_id, "stage:failed")
    assert failed.payload["error"] == "ValueError: progress: expected a number from 0 to 1, got 1.5"


def test_progress_events_carry_the_time_of_each_call(make_tk: MakeKernel, clock: FakeClock) -> None:
    """Each ``stage:progress`` is stamped when ``ctx.progress`` was called, not at the finish."""

    def slow_steps(ctx: StageContext[Num, NoConfig]) -> Num:
        ctx.progress(0.5, "first half")
        clock.advance(timedelta(seconds=30))
        ctx.progress(1.0, "second half")
        clock.advance(timedelta(seconds=30))
        return ctx.input

    tk = make_tk(pipeline("timed", custom("steps", slow_steps)))
    run_id = create(tk, "timed")
    started_at = clock.now()

    tk.run_until_idle()

    stamps = [e.occurred_at for e in events_of(tk.store, run_id, "stage:progress")]
    [completed] = events_of(tk.store, run_id, "stage:completed")
    assert stamps == [started_at, started_at + timedelta(seconds=30)]
    assert completed.occurred_at == started_at + timedelta(seconds=60)
