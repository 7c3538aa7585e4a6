"""Progress is written while the stage runs, throttled, and the last call always
lands before the stage's final event (SPEC §3.3, §19)."""

from __future__ import annotations

from datetime import timedelta

from kernel import StageContext, StageProgress, StageReportProgress
from testing import CollectingEventSink, FakeClock
from tests.harness import MakeKernel, create, event_types, events_of, stage_of, start
from tests.workflows import Calls, NoConfig, Num, add, custom, pipeline, progressing


def test_progress_is_in_the_outbox_while_the_stage_still_runs(make_tk: MakeKernel) -> None:
    """SPEC §19: ``ctx.progress`` is written by ``stage.progress``, not kept for the finish."""
    seen_while_running: list[list[str]] = []

    def long_task(ctx: StageContext[Num, NoConfig]) -> Num:
        ctx.progress(0.4, "reading pages", {"page": 4})
        outbox = tk.store.get_outbox(ctx.workflow_run_id)
        seen_while_running.append([event.event_type for event in outbox])
        return ctx.input

    tk = make_tk(pipeline("live", custom("long", long_task)))
    run_id = create(tk, "live")

    tk.run_until_idle()

    assert seen_while_running[0][-2:] == ["stage:started", "stage:progress"]
    [event] = events_of(tk.store, run_id, "stage:progress")
    assert (event.payload["progress"], event.payload["message"]) == (0.4, "reading pages")


def test_calls_within_half_a_second_are_throttled_and_the_last_one_is_kept(
    make_tk: MakeKernel, sink: CollectingEventSink
) -> None:
    """SPEC §19: one write per stage per 0.5 s; the finish writes the last call.

    The fake clock does not move while the stage runs, so the first call is
    written at once, the second is replaced by the third, and the third is
    written with the finish, before ``stage:completed``.
    """
    tk = make_tk(pipeline("busy", progressing(Calls(), "work"), add(Calls(), "after")))
    run_id = create(tk, "busy")

    tk.run_until_idle()

    types = event_types(tk.store, run_id)
    work = types[types.index("stage:started") : types.index("stage:completed") + 1]
    assert work == ["stage:started", "stage:progress", "stage:progress", "stage:completed"]
    assert [(e.progress, e.message, e.details) for e in sink.of_type(StageProgress)] == [
        (0.25, "step 1", {"step": 1}),
        (1.0, "step 3", {"step": 3}),
    ]


def test_calls_half_a_second_apart_are_each_written(make_tk: MakeKernel, clock: FakeClock) -> None:
    """Each call at least 0.5 s after the last write is written as it is made."""

    def paced(ctx: StageContext[Num, NoConfig]) -> Num:
        for step in (0.2, 0.6, 1.0):
            ctx.progress(step, f"at {step}")
            clock.advance(timedelta(milliseconds=500))
        return ctx.input

    tk = make_tk(pipeline("paced", custom("paced", paced)))
    run_id = create(tk, "paced")

    tk.run_until_idle()

    progress = [e.payload["progress"] for e in events_of(tk.store, run_id, "stage:progress")]
    assert progress == [0.2, 0.6, 1.0]


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
    """Progress made before a failure comes before ``stage:failed``."""

    def half_then_fail(ctx: StageContext[Num, NoConfig]) -> Num:
        ctx.progress(0.5, "halfway")
        raise RuntimeError("tripped")

    tk = make_tk(pipeline("trip", custom("trip", half_then_fail)))
    run_id = create(tk, "trip")

    tk.run_until_idle()

    types = event_types(tk.store, run_id)
    assert types[2:5] == ["stage:started", "stage:progress", "stage:failed"]


def test_progress_outside_zero_to_one_is_clamped(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §19: an out-of-range value is clamped, not a failed attempt."""

    def overshoot(ctx: StageContext[Num, NoConfig]) -> Num:
        ctx.progress(-0.5, "before the start")
        clock.advance(timedelta(seconds=1))
        ctx.progress(1.5, "too far")
        return ctx.input

    tk = make_tk(pipeline("over", custom("over", overshoot)))
    run_id = create(tk, "over")

    tk.run_until_idle()

    progress = [e.payload["progress"] for e in events_of(tk.store, run_id, "stage:progress")]
    assert progress == [0.0, 1.0]
    assert event_types(tk.store, run_id)[-1] == "workflow:completed"


def test_progress_that_is_not_a_number_fails_the_attempt(make_tk: MakeKernel) -> None:
    """A string or NaN is a bug in the stage: the attempt fails and says so."""

    def wrong(ctx: StageContext[Num, NoConfig]) -> Num:
        ctx.progress("half", "oops")  # type: ignore[arg-type]
        return ctx.input

    tk = make_tk(pipeline("wrong", custom("wrong", wrong)))
    run_id = create(tk, "wrong")

    tk.run_until_idle()

    [failed, *_] = events_of(tk.store, run_id, "stage:failed")
    assert failed.payload["error"] == (
        "TypeError: progress: expected a number from 0 to 1, got 'half'"
    )


def test_a_report_from_an_attempt_that_is_over_is_not_recorded(make_tk: MakeKernel) -> None:
    """``stage.progress`` for an attempt that is not the stage's running one writes nothing."""
    tk = make_tk(pipeline("done", add(Calls(), "only")))
    run_id = start(tk, "done")
    tk.run_until_idle()
    attempt = stage_of(tk.store, run_id, "only").attempt

    result = tk.kernel.dispatch(
        StageReportProgress(
            workflow_run_id=run_id, stage_id="only", attempt=attempt, progress=0.5, message="late"
        )
    )

    assert result.recorded is False
    assert events_of(tk.store, run_id, "stage:progress") == []


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
