"""Testing a workflow: run it to the end on in-memory adapters and check what happened."""

import attrs

from kernel import (
    RunCreate,
    StageCompleted,
    StageContext,
    Status,
    WorkflowBuilder,
    WorkflowCompleted,
    define_stage,
)
from testing import CollectingEventSink, create_test_kernel


# --8<-- [start:workflow]
@attrs.frozen
class Signup:
    email: str


@attrs.frozen
class Account:
    user_id: str
    email: str


@attrs.frozen
class Welcome:
    user_id: str
    subject: str


@attrs.frozen
class NoConfig:
    pass


def create_account(ctx: StageContext[Signup, NoConfig]) -> Account:
    email = ctx.input.email.lower()
    return Account(user_id="u-" + email.split("@")[0], email=email)


def write_welcome(ctx: StageContext[Account, NoConfig]) -> Welcome:
    return Welcome(user_id=ctx.input.user_id, subject=f"Welcome, {ctx.input.email}")


account_stage = define_stage(
    id="account",
    name="Create account",
    input=Signup,
    output=Account,
    config=NoConfig,
    execute=create_account,
)
welcome_stage = define_stage(
    id="welcome",
    name="Write welcome",
    input=Account,
    output=Welcome,
    config=NoConfig,
    execute=write_welcome,
)
signup = (
    WorkflowBuilder("signup", "Signup", input=Signup, output=Welcome)
    .pipe(account_stage)
    .pipe(welcome_stage)
    .build()
)
# --8<-- [end:workflow]


# --8<-- [start:test]
def test_signup_creates_an_account_then_a_welcome() -> None:
    sink = CollectingEventSink()
    test = create_test_kernel(signup, sink=sink)

    created = test.dispatch(RunCreate(workflow_id="signup", input={"email": "Ada@Example.com"}))
    assert test.run_until_idle() == 2  # jobs executed

    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"user_id": "u-ada", "subject": "Welcome, ada@example.com"}
    stages = test.store.get_stages(run.id)
    assert [(s.stage_id, s.status, s.attempt) for s in stages] == [
        ("account", Status.COMPLETED, 1),
        ("welcome", Status.COMPLETED, 1),
    ]
    assert sink.types == [
        "workflow:created",
        "workflow:started",
        "stage:started",
        "stage:completed",
        "stage:started",
        "stage:completed",
        "workflow:completed",
    ]
    assert [event.stage_id for event in sink.of_type(StageCompleted)] == ["account", "welcome"]
    [completed] = sink.of_type(WorkflowCompleted)
    assert completed.workflow_run_id == run.id and completed.output == run.output


# --8<-- [end:test]


# --8<-- [start:one-stage]
def test_welcome_stage_on_its_own() -> None:
    # To test one stage, give it a workflow of its own and the input it expects.
    only_welcome = (
        WorkflowBuilder("welcome-only", "Welcome only", input=Account, output=Welcome)
        .pipe(welcome_stage)
        .build()
    )
    test = create_test_kernel(only_welcome)
    created = test.dispatch(
        RunCreate(workflow_id="welcome-only", input={"user_id": "u-1", "email": "a@b.c"})
    )
    test.run_until_idle()
    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.output == {"user_id": "u-1", "subject": "Welcome, a@b.c"}


# --8<-- [end:one-stage]
