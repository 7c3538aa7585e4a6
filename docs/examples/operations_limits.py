"""Limits: at most N at once per key, a provider's rate limit, and runs per workflow."""

from datetime import timedelta

import attrs

from kernel import (
    Limit,
    Rate,
    RunClaimPending,
    RunCreate,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from testing import create_test_kernel


@attrs.frozen
class Ticket:
    customer: str
    text: str


@attrs.frozen
class Answer:
    text: str


@attrs.frozen
class NoConfig:
    pass


def reply(ctx: StageContext[Ticket, NoConfig]) -> Answer:
    return Answer(f"re: {ctx.input.text}")  # stands for a model call


# --8<-- [start:define]
# At most 2 of one customer's tickets at once, and no more than 500 calls a
# minute to the provider across every customer: two stages, two keys.
per_customer = define_stage(
    id="draft", name="Draft", input=Ticket, output=Answer, config=NoConfig, execute=reply,
    limit=Limit(lambda ticket: f"customer:{ticket.customer}", max_running=2),
)  # fmt: skip
provider = define_stage(
    id="polish", name="Polish", input=Answer, output=Answer, config=NoConfig,
    execute=lambda ctx: ctx.input,
    limit=Limit("openai", rate=Rate(500, per=timedelta(minutes=1))),
)  # fmt: skip
support = (
    WorkflowBuilder("support", "Support", input=Ticket, output=Answer, max_running_runs=100)
    .pipe(per_customer)
    .pipe(provider)
    .build()
)
# --8<-- [end:define]


# --8<-- [start:rate]
def test_a_rate_limit_on_the_fake_clock() -> None:
    """``Rate(2, per=1 min)``: run_until_idle jumps the clock to each moment the
    window has room again, so five runs finish two minutes later."""
    slow = define_stage(
        id="call", name="Call", input=Ticket, output=Answer, config=NoConfig, execute=reply,
        limit=Limit("openai", rate=Rate(2, per=timedelta(minutes=1))),
    )  # fmt: skip
    workflow = WorkflowBuilder("calls", "Calls", input=Ticket, output=Answer).pipe(slow).build()
    test = create_test_kernel(workflow)
    start = test.clock.now()
    for n in range(5):
        test.dispatch(RunCreate(workflow_id="calls", input={"customer": "acme", "text": str(n)}))
    assert test.run_until_idle() == 5
    assert test.clock.now() - start == timedelta(minutes=2)


# --8<-- [end:rate]


# --8<-- [start:runs]
def test_max_running_runs_leaves_the_rest_pending() -> None:
    capped = (
        WorkflowBuilder("nightly", "Nightly", input=Ticket, output=Answer, max_running_runs=1)
        .pipe(per_customer)
        .build()
    )
    test = create_test_kernel(capped)
    for n in range(3):
        test.dispatch(RunCreate(workflow_id="nightly", input={"customer": "a", "text": str(n)}))
    claimed = test.dispatch(RunClaimPending(worker_id="w", max_claims=10)).claimed
    assert len(claimed) == 1  # the other two stay PENDING until it finishes
    test.run_until_idle()
    assert {run.status for run in test.store.list_runs()} == {Status.COMPLETED}


# --8<-- [end:runs]


def test_the_support_workflow_runs() -> None:
    test = create_test_kernel(support)
    for customer in ("acme", "acme", "acme", "globex"):
        test.dispatch(RunCreate(workflow_id="support", input={"customer": customer, "text": "hi"}))
    assert test.run_until_idle() == 8
