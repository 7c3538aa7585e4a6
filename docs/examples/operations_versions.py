"""Versions: deploy a new version of a workflow while runs of the old one are in flight."""

import attrs
import pytest

from adapters.memory import InMemoryStore
from kernel import (
    JobStatus,
    RunCreate,
    RunRerunFrom,
    StageContext,
    StageNotFoundError,
    Status,
    WorkflowBuilder,
    WorkflowNotFoundError,
    WorkflowRun,
    define_stage,
)
from kernel.ports import Store
from testing import SequentialIds, create_test_kernel


@attrs.frozen
class Invoice:
    amount: int


@attrs.frozen
class NoConfig:
    pass


def total(ctx: StageContext[Invoice, NoConfig]) -> Invoice:
    return ctx.input


def add_tax(ctx: StageContext[Invoice, NoConfig]) -> Invoice:
    return Invoice(ctx.input.amount * 12 // 10)


total_stage = define_stage(
    id="total", name="Total", input=Invoice, output=Invoice, config=NoConfig, execute=total
)
tax_stage = define_stage(
    id="tax", name="Tax", input=Invoice, output=Invoice, config=NoConfig, execute=add_tax
)


def run_of(store: Store, run_id: str) -> WorkflowRun:
    run = store.get_run(run_id)
    assert run is not None
    return run


# --8<-- [start:versions]
invoices_v1 = (
    WorkflowBuilder("invoices", "Invoices", input=Invoice, output=Invoice, version="1")
    .pipe(total_stage)
    .build()
)
invoices_v2 = (
    WorkflowBuilder("invoices", "Invoices", input=Invoice, output=Invoice, version="2")
    .pipe(total_stage)
    .pipe(tax_stage)
    .build()
)
# --8<-- [end:versions]


# --8<-- [start:create]
def test_new_runs_take_the_newest_version() -> None:
    test = create_test_kernel(invoices_v1, invoices_v2)  # the newest is the last registered
    newest = test.dispatch(RunCreate(workflow_id="invoices", input={"amount": 100}))
    pinned = test.dispatch(RunCreate(workflow_id="invoices", input={"amount": 100}, version="1"))
    test.run_until_idle()

    run = run_of(test.store, newest.workflow_run_id)
    assert (run.workflow_version, run.output) == ("2", {"amount": 120})
    run = run_of(test.store, pinned.workflow_run_id)
    assert (run.workflow_version, run.output) == ("1", {"amount": 100})
    with pytest.raises(WorkflowNotFoundError, match="workflow 'invoices' version '3' is not"):
        test.dispatch(RunCreate(workflow_id="invoices", input={"amount": 1}, version="3"))


# --8<-- [end:create]


# --8<-- [start:rolling]
def test_a_rolling_deploy_leaves_old_runs_to_old_workers() -> None:
    store = InMemoryStore()  # in production: the database both releases use
    old = create_test_kernel(invoices_v1, store=store, ids=SequentialIds("old"))
    in_flight = old.dispatch(RunCreate(workflow_id="invoices", input={"amount": 50}))

    # Release 2 starts beside release 1; its workers hold version 2 only.
    new = create_test_kernel(invoices_v2, store=store, ids=SequentialIds("new"))
    fresh = new.dispatch(RunCreate(workflow_id="invoices", input={"amount": 50}))
    new.run_until_idle()  # returns: the work left is version 1's, not its own

    assert run_of(store, fresh.workflow_run_id).status == Status.COMPLETED
    assert run_of(store, in_flight.workflow_run_id).status == Status.PENDING

    old.run_until_idle()  # release 1 drains its own runs; then it can stop
    assert run_of(store, in_flight.workflow_run_id).status == Status.COMPLETED
    jobs = store.get_jobs(in_flight.workflow_run_id)
    assert [(job.stage_id, job.status) for job in jobs] == [("total", JobStatus.COMPLETED)]


# --8<-- [end:rolling]


# --8<-- [start:rerun]
def test_rerun_an_old_run_on_the_new_version() -> None:
    test = create_test_kernel(invoices_v1, invoices_v2)
    created = test.dispatch(RunCreate(workflow_id="invoices", input={"amount": 10}, version="1"))
    test.run_until_idle()

    run_id = created.workflow_run_id
    test.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="tax", version="2"))
    test.run_until_idle()

    run = run_of(test.store, run_id)
    assert (run.workflow_version, run.output) == ("2", {"amount": 12})
    with pytest.raises(StageNotFoundError, match="workflow 'invoices' version '1'"):
        test.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="tax", version="1"))


# --8<-- [end:rerun]
