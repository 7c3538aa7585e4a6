"""Retry policies and timeouts: how often a stage is tried, how long it waits between
attempts, which errors are final, and how long one attempt may run."""

from datetime import timedelta

import attrs

from kernel import (
    Retry,
    RunCreate,
    StageContext,
    StageFailed,
    Status,
    WorkflowBuilder,
    define_stage,
)
from testing import CollectingEventSink, FakeClock, create_test_kernel


@attrs.frozen
class Invoice:
    number: str


@attrs.frozen
class Booked:
    number: str


@attrs.frozen
class NoConfig:
    pass


class LedgerUnavailable(Exception):
    """The ledger's API is down: worth another try."""


class InvoiceRejected(Exception):
    """The ledger says the invoice is wrong: no retry will change that."""


ledger_answers: list[Exception | None] = []
"""What the fake ledger does on each call (``None``: it books the invoice)."""


def book(ctx: StageContext[Invoice, NoConfig]) -> Booked:
    answer = ledger_answers.pop(0)
    if answer is not None:
        raise answer
    return Booked(number=ctx.input.number)


# --8<-- [start:policy]
book_stage = define_stage(
    id="book",
    name="Book the invoice",
    input=Invoice,
    output=Booked,
    config=NoConfig,
    execute=book,
    # Up to 5 attempts, waiting 10 s, 30 s, 90 s, then 2 min (the cap) between them;
    # an InvoiceRejected fails the stage at once.
    retry=Retry(
        max_attempts=5,
        backoff=timedelta(seconds=10),
        factor=3.0,
        max_backoff=timedelta(minutes=2),
        non_retryable=(InvoiceRejected,),
    ),
    # An attempt still running after 30 s fails with STAGE_TIMEOUT (and is retried).
    timeout=timedelta(seconds=30),
)

invoices = (
    # The default for every stage of this workflow that sets no policy of its own.
    WorkflowBuilder("invoices", "Invoices", input=Invoice, output=Booked, retry=Retry())
    .pipe(book_stage)
    .build()
)
# --8<-- [end:policy]


# --8<-- [start:timeline]
def test_the_attempts_follow_the_backoff_timeline() -> None:
    clock = FakeClock()
    sink = CollectingEventSink()
    test = create_test_kernel(invoices, clock=clock, sink=sink)
    ledger_answers[:] = [LedgerUnavailable("503")] * 4 + [None]
    start = clock.now()

    created = test.dispatch(RunCreate(workflow_id="invoices", input={"number": "F-17"}))
    test.run_until_idle()  # jumps the fake clock over each wait

    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.COMPLETED
    failed_at = [event.timestamp - start for event in sink.of_type(StageFailed)]
    # Attempt n fails at the sum of the waits before it.
    assert [int(t.total_seconds()) for t in failed_at] == [0, 10, 40, 130]
    # --8<-- [end:timeline]


# --8<-- [start:final]
def test_a_non_retryable_error_fails_the_run_at_once() -> None:
    test = create_test_kernel(invoices, clock=FakeClock())
    ledger_answers[:] = [InvoiceRejected("unknown customer")]

    created = test.dispatch(RunCreate(workflow_id="invoices", input={"number": "F-18"}))
    test.run_until_idle()

    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.FAILED
    assert run.error == "InvoiceRejected: unknown customer"
    [stage] = test.store.get_stages(created.workflow_run_id)
    assert stage.attempt == 1
    assert stage.error_traceback is not None  # where it was raised, for `wfk run show --traceback`
    # --8<-- [end:final]
