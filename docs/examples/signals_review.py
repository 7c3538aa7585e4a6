"""Human approval: a document review workflow that waits up to 48 hours for a decision."""

from datetime import timedelta
from typing import Literal

import attrs
import pytest

from kernel import (
    InvalidInputError,
    InvalidStateError,
    RunCreate,
    RunSignal,
    StageContext,
    StagePollSuspended,
    Status,
    WorkflowBuilder,
    define_signal_stage,
    define_stage,
)
from testing import CollectingEventSink, FakeClock, create_test_kernel


# --8<-- [start:workflow]
@attrs.frozen
class Document:
    title: str
    text: str


@attrs.frozen
class Extracted:
    title: str
    paragraphs: list[str]


@attrs.frozen
class Summary:
    title: str
    summary: str


@attrs.frozen
class ApprovalDecision:
    approved: bool
    by: str
    comment: str = ""


@attrs.frozen
class Outcome:
    title: str
    action: Literal["published", "archived"]
    by: str


@attrs.frozen
class NoConfig:
    pass


def extract(ctx: StageContext[Document, NoConfig]) -> Extracted:
    paragraphs = [p.strip() for p in ctx.input.text.split("\n\n") if p.strip()]
    return Extracted(title=ctx.input.title, paragraphs=paragraphs)


def summarise(ctx: StageContext[Extracted, NoConfig]) -> Summary:
    first = ctx.input.paragraphs[0] if ctx.input.paragraphs else ""
    return Summary(title=ctx.input.title, summary=first.split(". ")[0])


def publish_or_archive(ctx: StageContext[ApprovalDecision, NoConfig]) -> Outcome:
    summary = ctx.require(summarise_stage)  # an earlier stage's output, typed Summary
    decision = ctx.input  # the approval signal's payload
    # A real stage would call your CMS here: publish the summary, or archive it.
    action: Literal["published", "archived"] = "published" if decision.approved else "archived"
    return Outcome(title=summary.title, action=action, by=decision.by)


extract_stage = define_stage(
    id="extract", name="Extract", input=Document, output=Extracted, config=NoConfig, execute=extract
)
summarise_stage = define_stage(
    id="summarise",
    name="Summarise",
    input=Extracted,
    output=Summary,
    config=NoConfig,
    execute=summarise,
)
approval_stage = define_signal_stage(
    id="approve",
    name="Approve",
    signal="approval",  # the name senders use: RunSignal(run_id, "approval", payload)
    output=ApprovalDecision,  # the payload, checked and structured when it is sent
    timeout=timedelta(hours=48),  # then the run fails with SIGNAL_TIMEOUT
)
finish_stage = define_stage(
    id="finish",
    name="Publish or archive",
    input=ApprovalDecision,
    output=Outcome,
    config=NoConfig,
    execute=publish_or_archive,
    dependencies=["summarise"],
)
review = (
    WorkflowBuilder("review", "Document review", input=Document, output=Outcome)
    .pipe(extract_stage)
    .pipe(summarise_stage)
    .pipe(approval_stage)
    .pipe(finish_stage)
    .build()
)
# --8<-- [end:workflow]

MEMO = {"title": "Q3 memo", "text": "Revenue grew. Costs fell.\n\nDetails follow."}


# --8<-- [start:approved]
def test_an_approved_document_is_published() -> None:
    sink = CollectingEventSink()
    test = create_test_kernel(review, sink=sink)
    run_id = test.dispatch(RunCreate(workflow_id="review", input=MEMO)).workflow_run_id
    test.run_until_idle()  # extract, summarise, then the run waits for a person

    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.SUSPENDED
    stages = {stage.stage_id: stage.status for stage in test.store.get_stages(run_id)}
    assert stages["approve"] == Status.SUSPENDED

    # The reviewer clicks "approve": your app sends the signal.
    sent = test.dispatch(RunSignal(run_id, "approval", {"approved": True, "by": "ana"}))
    assert (sent.delivered, sent.buffered) == (True, False)
    test.run_until_idle()

    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"title": "Q3 memo", "action": "published", "by": "ana"}
    assert sink.types[-5:] == [
        "stage:signalled",
        "stage:completed",
        "stage:started",
        "stage:completed",
        "workflow:completed",
    ]


# --8<-- [end:approved]


# --8<-- [start:rejected]
def test_a_rejected_document_is_archived() -> None:
    test = create_test_kernel(review)
    run_id = test.dispatch(RunCreate(workflow_id="review", input=MEMO)).workflow_run_id
    test.run_until_idle()

    no = {"approved": False, "by": "bo", "comment": "numbers unchecked"}
    test.dispatch(RunSignal(run_id, "approval", no))
    test.run_until_idle()

    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"title": "Q3 memo", "action": "archived", "by": "bo"}


# --8<-- [end:rejected]


# --8<-- [start:timeout]
def test_no_answer_within_48_hours_fails_the_run() -> None:
    clock = FakeClock()
    test = create_test_kernel(review, clock=clock)
    run_id = test.dispatch(RunCreate(workflow_id="review", input=MEMO)).workflow_run_id
    clock.advance(timedelta(hours=2))  # the workers were busy: the run starts 2 hours late
    test.run_until_idle()
    waiting_since = clock.now()  # the 48 hours count from here, not from RunCreate

    test.run_until_idle()  # waiting for a person is not work: the clock stays put
    assert clock.now() == waiting_since

    clock.advance(timedelta(hours=47, minutes=59))
    assert test.dispatch(StagePollSuspended()).failed == 0
    clock.advance(timedelta(minutes=1))  # 48 hours after the stage started waiting
    with pytest.raises(InvalidStateError, match="stopped waiting for signal 'approval'"):
        test.dispatch(RunSignal(run_id, "approval", {"approved": True, "by": "ana"}))
    assert test.dispatch(StagePollSuspended()).failed == 1  # a host's tick does this

    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.FAILED
    assert run.error is not None and run.error.startswith(
        "SIGNAL_TIMEOUT: stage 'approve' waited for signal 'approval'"
    )
    [approve] = [s for s in test.store.get_stages(run_id) if s.stage_id == "approve"]
    assert approve.attempt == 1  # a timeout is not retried


# --8<-- [end:timeout]


# --8<-- [start:early]
def test_a_signal_sent_before_the_stage_waits_is_kept() -> None:
    test = create_test_kernel(review)
    run_id = test.dispatch(RunCreate(workflow_id="review", input=MEMO)).workflow_run_id

    # The run has not even started; the decision is kept on the run.
    sent = test.dispatch(RunSignal(run_id, "approval", {"approved": True, "by": "ana"}))
    assert (sent.delivered, sent.buffered) == (False, True)

    test.run_until_idle()  # "approve" takes the kept signal as soon as it starts waiting

    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"title": "Q3 memo", "action": "published", "by": "ana"}
    [signal] = test.store.get_signals(run_id)
    assert (signal.name, signal.stage_id, signal.is_buffered) == ("approval", "approve", False)


# --8<-- [end:early]


# --8<-- [start:refused]
def test_a_payload_that_does_not_fit_is_refused() -> None:
    test = create_test_kernel(review)
    run_id = test.dispatch(RunCreate(workflow_id="review", input=MEMO)).workflow_run_id
    test.run_until_idle()

    with pytest.raises(InvalidInputError) as refused:
        test.dispatch(RunSignal(run_id, "approval", {"approved": "yes", "by": "ana"}))
    assert refused.value.problems == ("payload.approved: expected bool, got 'yes'",)
    with pytest.raises(InvalidInputError, match="no stage of workflow 'review' waits for"):
        test.dispatch(RunSignal(run_id, "approved", {"approved": True, "by": "ana"}))

    # Nothing was written: the stage still waits, and a good payload goes through.
    assert test.store.get_signals(run_id) == []
    assert test.dispatch(RunSignal(run_id, "approval", {"approved": True, "by": "ana"})).delivered


# --8<-- [end:refused]


def main() -> None:
    clock = FakeClock()
    test = create_test_kernel(review, clock=clock)
    run_id = test.dispatch(RunCreate(workflow_id="review", input=MEMO)).workflow_run_id
    print(f"{clock.now():%a %H:%M}  run {run_id} created for {MEMO['title']!r}")
    test.run_until_idle()
    for stage in test.store.get_stages(run_id):
        print(f"{clock.now():%a %H:%M}  {stage.stage_id:<10} {stage.status.value}")

    clock.advance(timedelta(hours=20))
    decision = {"approved": True, "by": "ana", "comment": "ship it"}
    test.dispatch(RunSignal(run_id, "approval", decision))
    print(f"{clock.now():%a %H:%M}  ana approves (20 hours later)")
    test.run_until_idle()

    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    print(f"{clock.now():%a %H:%M}  run {run.status.value}: {run.output}")


if __name__ == "__main__":
    main()
