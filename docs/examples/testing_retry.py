"""Testing retries: a stage that fails, is retried with backoff, and succeeds or gives up."""

from datetime import timedelta

import attrs

from kernel import (
    RunClaimPending,
    RunCreate,
    StageContext,
    StageFailed,
    Status,
    Workflow,
    WorkflowBuilder,
    WorkflowFailed,
    define_stage,
)
from testing import CollectingEventSink, FakeClock, create_test_kernel


# --8<-- [start:workflow]
@attrs.frozen
class Notice:
    to: str


@attrs.frozen
class Sent:
    to: str
    attempt: int


@attrs.frozen
class NoConfig:
    pass


class FlakyMailer:
    """A test double: fails ``failures`` times, then sends."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []

    def send(self, to: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("mail server unavailable")
        self.sent.append(to)


def notify_workflow(mailer: FlakyMailer) -> Workflow[Notice, Sent]:
    """The workflow under test, built around the mailer it should use."""

    def send(ctx: StageContext[Notice, NoConfig]) -> Sent:
        mailer.send(ctx.input.to)  # raising fails this attempt
        return Sent(to=ctx.input.to, attempt=ctx.attempt)

    send_stage = define_stage(
        id="send", name="Send", input=Notice, output=Sent, config=NoConfig, execute=send
    )
    return WorkflowBuilder("notify", "Notify", input=Notice, output=Sent).pipe(send_stage).build()


# --8<-- [end:workflow]


# --8<-- [start:retried]
def test_flaky_stage_is_retried_with_backoff() -> None:
    clock = FakeClock()
    sink = CollectingEventSink()
    mailer = FlakyMailer(failures=2)
    test = create_test_kernel(notify_workflow(mailer), clock=clock, sink=sink)
    started = clock.now()

    created = test.dispatch(RunCreate(workflow_id="notify", input={"to": "ada@example.com"}))
    test.run_until_idle()  # jumps the fake clock over each backoff

    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"to": "ada@example.com", "attempt": 3}
    assert mailer.sent == ["ada@example.com"]
    failures = sink.of_type(StageFailed)
    assert [(event.attempt, event.will_retry) for event in failures] == [(1, True), (2, True)]
    assert failures[0].error == "ConnectionError: mail server unavailable"
    assert clock.now() - started == timedelta(seconds=1 + 2)  # backoff: 1 s, then 2 s


# --8<-- [end:retried]


# --8<-- [start:gives-up]
def test_stage_that_keeps_failing_fails_the_run() -> None:
    sink = CollectingEventSink()
    test = create_test_kernel(notify_workflow(FlakyMailer(failures=10)), sink=sink)

    created = test.dispatch(RunCreate(workflow_id="notify", input={"to": "ada@example.com"}))
    test.run_until_idle()

    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.FAILED
    assert run.error == "ConnectionError: mail server unavailable"
    # Three attempts (the default max_attempts); only the last one does not retry.
    assert [event.will_retry for event in sink.of_type(StageFailed)] == [True, True, False]
    [failed] = sink.of_type(WorkflowFailed)
    assert failed.error == run.error


# --8<-- [end:gives-up]


# --8<-- [start:step]
def test_retry_waits_for_its_backoff() -> None:
    clock = FakeClock()
    test = create_test_kernel(notify_workflow(FlakyMailer(failures=1)), clock=clock)
    created = test.dispatch(RunCreate(workflow_id="notify", input={"to": "ada@example.com"}))
    test.dispatch(RunClaimPending(worker_id="w"))

    first = test.kernel.execute_next_job("w")
    assert first is not None and first[1].outcome == "failed"
    [stage] = test.store.get_stages(created.workflow_run_id)
    assert (stage.status, stage.error) == (
        Status.PENDING,
        "ConnectionError: mail server unavailable",
    )

    assert test.kernel.execute_next_job("w") is None  # the retry is not due yet
    clock.advance(timedelta(seconds=1))
    second = test.kernel.execute_next_job("w")
    assert second is not None and second[1].outcome == "completed"


# --8<-- [end:step]
