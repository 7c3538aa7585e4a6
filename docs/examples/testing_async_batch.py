"""Testing an async-batch stage: step through suspension and polling with a fake clock."""

from datetime import timedelta
from typing import Any

import attrs

from kernel import (
    CompletionCheck,
    RunClaimPending,
    RunCreate,
    StageContext,
    StagePollSuspended,
    Status,
    Suspend,
    Workflow,
    WorkflowBuilder,
    define_async_batch_stage,
)
from testing import CollectingEventSink, FakeClock, create_test_kernel


# --8<-- [start:workflow]
@attrs.frozen
class Video:
    url: str


@attrs.frozen
class Transcript:
    text: str


@attrs.frozen
class TranscribeConfig:
    poll_seconds: int = 30
    max_wait_minutes: int = 10


class FakeTranscriber:
    """A test double for a slow external service: ready after ``checks_needed`` checks."""

    def __init__(self, checks_needed: int) -> None:
        self.checks_needed = checks_needed
        self.checks = 0

    def start(self, url: str) -> str:
        return f"job-for-{url}"

    def result(self, job_id: str) -> str | None:
        self.checks += 1
        return f"transcript of {job_id}" if self.checks >= self.checks_needed else None


def transcribe_workflow(service: FakeTranscriber) -> Workflow[Video, Transcript]:
    def start(ctx: StageContext[Video, TranscribeConfig]) -> Suspend:
        return Suspend(
            {"job_id": service.start(ctx.input.url)},
            poll_interval=timedelta(seconds=ctx.config.poll_seconds),
            max_wait=timedelta(minutes=ctx.config.max_wait_minutes),
        )

    def check(
        state: dict[str, Any], ctx: StageContext[Video, TranscribeConfig]
    ) -> CompletionCheck[Transcript]:
        text = service.result(state["job_id"])
        if text is None:
            return CompletionCheck(ready=False)
        return CompletionCheck(ready=True, output=Transcript(text=text))

    stage = define_async_batch_stage(
        id="transcribe",
        name="Transcribe",
        input=Video,
        output=Transcript,
        config=TranscribeConfig,
        execute=start,
        check_completion=check,
    )
    return (
        WorkflowBuilder("transcribe", "Transcribe", input=Video, output=Transcript)
        .pipe(stage)
        .build()
    )


# --8<-- [end:workflow]


# --8<-- [start:step]
def test_transcription_suspends_then_completes() -> None:
    clock = FakeClock()
    service = FakeTranscriber(checks_needed=2)
    test = create_test_kernel(transcribe_workflow(service), clock=clock)
    created = test.dispatch(RunCreate(workflow_id="transcribe", input={"url": "talk.mp4"}))
    run_id = created.workflow_run_id
    test.dispatch(RunClaimPending(worker_id="w"))

    executed = test.kernel.execute_next_job("w")
    assert executed is not None
    _job, result = executed
    assert result.outcome == "suspended"
    assert result.next_poll_at == clock.now() + timedelta(seconds=30)
    [stage] = test.store.get_stages(run_id)
    assert stage.status == Status.SUSPENDED
    assert stage.suspended_state == {"job_id": "job-for-talk.mp4"}
    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.SUSPENDED

    # Nothing is due before next_poll_at.
    assert test.dispatch(StagePollSuspended()).checked == 0

    clock.advance(timedelta(seconds=30))
    polled = test.dispatch(StagePollSuspended())
    assert (polled.checked, polled.resumed) == (1, 0)  # first check: not ready

    clock.advance(timedelta(seconds=30))
    polled = test.dispatch(StagePollSuspended())
    assert polled.resumed_workflow_run_ids == [run_id]
    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"text": "transcript of job-for-talk.mp4"}


# --8<-- [end:step]


# --8<-- [start:timeout]
def test_transcription_that_never_finishes_times_out() -> None:
    clock = FakeClock()
    sink = CollectingEventSink()
    service = FakeTranscriber(checks_needed=1_000)
    test = create_test_kernel(transcribe_workflow(service), clock=clock, sink=sink)
    started = clock.now()
    created = test.dispatch(
        RunCreate(
            workflow_id="transcribe",
            input={"url": "talk.mp4"},
            config={"transcribe": {"max_wait_minutes": 2}},
        )
    )
    test.run_until_idle()  # polls at every due time, moving the clock, until the run ends

    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.FAILED
    assert run.error is not None and run.error.startswith(
        "TimeoutError: stage 'transcribe' did not complete before its max wait"
    )
    assert clock.now() - started == timedelta(minutes=2)
    assert service.checks == 4  # at 30 s, 60 s, 90 s and 120 s
    assert sink.types[-2:] == ["stage:failed", "workflow:failed"]


# --8<-- [end:timeout]
