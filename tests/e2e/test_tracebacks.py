"""A failed attempt keeps its error's type, message and traceback: on the stage, in
``stage:failed``, and once in the logging sink (SPEC §19)."""

from __future__ import annotations

import logging

import pytest

from adapters.sinks import LoggingEventSink
from kernel import StageContext, Status
from kernel.ports import TRACEBACK_LIMIT
from tests.harness import MakeKernel, create, events_of, run_of, stage_of
from tests.workflows import Calls, NoConfig, Num, custom, flaky, pipeline


def parse_item(item: int) -> int:
    raise ValueError(f"cannot process item {item}")


def process(ctx: StageContext[Num, NoConfig]) -> Num:
    return Num(parse_item(ctx.input.value))


def test_the_stage_keeps_the_traceback_of_its_last_failure(make_tk: MakeKernel) -> None:
    tk = make_tk(pipeline("items", custom("process", process)))
    run_id = create(tk, "items")

    tk.run_until_idle()

    stage = stage_of(tk.store, run_id, "process")
    assert stage.error == "ValueError: cannot process item 1"
    assert stage.error_traceback is not None
    lines = stage.error_traceback.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: cannot process item 1"
    assert "in process" in stage.error_traceback
    assert "in parse_item" in stage.error_traceback


def test_the_runners_own_frames_are_left_out(make_tk: MakeKernel) -> None:
    """The traceback starts at the stage's code, not in the kernel's runner."""
    tk = make_tk(pipeline("items", custom("process", process)))
    run_id = create(tk, "items")

    tk.run_until_idle()

    text = stage_of(tk.store, run_id, "process").error_traceback or ""
    assert "adapters/runner.py" not in text
    assert text.splitlines()[1].endswith("in process")


def test_stage_failed_events_carry_the_traceback(make_tk: MakeKernel) -> None:
    tk = make_tk(pipeline("items", custom("process", process)))
    run_id = create(tk, "items")

    tk.run_until_idle()

    failed = events_of(tk.store, run_id, "stage:failed")
    assert len(failed) == 3
    for event in failed:
        assert event.payload["traceback"].endswith("ValueError: cannot process item 1\n")


def test_failures_that_raised_nothing_have_no_traceback(make_tk: MakeKernel) -> None:
    """Output of the wrong shape fails the attempt without an exception of the user's."""
    tk = make_tk(pipeline("shape", custom("shape", lambda ctx: {"value": "not a number"})))
    run_id = create(tk, "shape")

    tk.run_until_idle()

    stage = stage_of(tk.store, run_id, "shape")
    assert stage.status == Status.FAILED
    assert stage.error_traceback is None
    [failed] = events_of(tk.store, run_id, "stage:failed")
    assert failed.payload["traceback"] is None


def test_a_huge_traceback_is_trimmed_keeping_its_end(make_tk: MakeKernel) -> None:
    # Two functions calling each other: Python does not fold their frames into one line.
    def ping(n: int) -> int:
        return pong(n - 1) if n else parse_item(n)

    def pong(n: int) -> int:
        return ping(n - 1) if n else parse_item(n)

    tk = make_tk(pipeline("deep", custom("deep", lambda ctx: Num(ping(400)))))
    run_id = create(tk, "deep")

    tk.run_until_idle()

    text = stage_of(tk.store, run_id, "deep").error_traceback or ""
    assert len(text) <= TRACEBACK_LIMIT
    assert "characters left out" in text
    assert text.endswith("ValueError: cannot process item 0\n")


def test_a_later_success_clears_the_traceback(make_tk: MakeKernel) -> None:
    tk = make_tk(pipeline("flaky", flaky(Calls(), "flaky", failures=1)))
    run_id = create(tk, "flaky")

    tk.run_until_idle()

    stage = stage_of(tk.store, run_id, "flaky")
    assert (stage.status, stage.error, stage.error_traceback) == (Status.COMPLETED, None, None)
    assert run_of(tk.store, run_id).status == Status.COMPLETED


def test_the_logging_sink_logs_each_failure_once_with_its_traceback(
    make_tk: MakeKernel, caplog: pytest.LogCaptureFixture
) -> None:
    tk = make_tk(pipeline("items", custom("process", process)), sink=LoggingEventSink())
    create(tk, "items")

    with caplog.at_level(logging.INFO, logger="workflow_kernel"):
        tk.run_until_idle()

    failures = [r for r in caplog.records if "stage:failed" in r.getMessage()]
    assert len(failures) == 3
    assert all(r.levelno == logging.WARNING for r in failures)
    message = failures[-1].getMessage()
    assert "stage=process attempt=3 will_retry=False: ValueError: cannot process item 1" in message
    assert message.count("Traceback (most recent call last):") == 1
    assert message.rstrip().endswith("ValueError: cannot process item 1")
