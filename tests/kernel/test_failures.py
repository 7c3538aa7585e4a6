"""Bad input makes a decision return a ``Failure`` with the right error, and no
effects at all (SPEC §6.1, §6.5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from returns.result import Failure, Result

from kernel import (
    InvalidConfigError,
    InvalidInputError,
    InvalidStateError,
    JobExecute,
    KernelError,
    RunCreate,
    RunNotFoundError,
    RunRerunFrom,
    StageNotFoundError,
    Status,
    Workflow,
    WorkflowNotFoundError,
    WorkflowRun,
    WorkflowStage,
)
from kernel.decisions import run_create, run_rerun_from
from kernel.decisions.context import Env
from kernel.decisions.job_execute import start as job_start
from kernel.decisions.job_execute.start import StartState
from kernel.decisions.lifecycle import StageState
from tests.harness import env, make_job, make_run, make_stage
from tests.workflows import Calls, linear

LINEAR = linear(Calls())
COMPLETED = [make_stage(s, number=n) for n, s in enumerate(["first", "second", "third"], 1)]
RERUNNABLE = make_run(status=Status.COMPLETED)
RUNNING = make_run()


def create(**fields: Any) -> Callable[[Env], Result[Any, KernelError]]:
    values: dict[str, Any] = {"workflow_id": "linear", "input": {"value": 1}, **fields}
    return lambda e: run_create.decide(RunCreate(**values), LINEAR, e)


def rerun(
    run: WorkflowRun | None = RERUNNABLE,
    stages: list[WorkflowStage] = COMPLETED,
    workflow: Workflow[Any, Any] | None = LINEAR,
    stage: str = "second",
) -> Callable[[Env], Result[Any, KernelError]]:
    cmd = RunRerunFrom(workflow_run_id="run-1", from_stage_id=stage)
    return lambda e: run_rerun_from.decide(cmd, StageState(run, stages, None, {}, workflow), e)


def start(
    run: WorkflowRun | None = RUNNING,
    workflow: Workflow[Any, Any] | None = LINEAR,
    stage: str = "first",
) -> Callable[[Env], Result[Any, KernelError]]:
    cmd = JobExecute(workflow_run_id="run-1", workflow_id="linear", stage_id=stage)
    return lambda e: job_start.decide(cmd, StartState(run, None, make_job(stage), workflow, {}), e)


CASES: list[Any] = [
    pytest.param(
        lambda e: run_create.decide(RunCreate(workflow_id="nope", input={}), None, e),
        WorkflowNotFoundError,
        "workflow 'nope' is not registered",
        id="run.create unknown workflow",
    ),
    pytest.param(
        create(input={"value": "one"}),
        InvalidInputError,
        "invalid input: input.value: expected int, got 'one'",
        id="run.create bad input",
    ),
    pytest.param(
        create(config={"first": {"amount": []}}),
        InvalidConfigError,
        "invalid config: config.first.amount: expected int, got []",
        id="run.create bad config",
    ),
    pytest.param(
        rerun(run=None),
        RunNotFoundError,
        "workflow run 'run-1' does not exist",
        id="run.rerunFrom missing run",
    ),
    pytest.param(
        rerun(workflow=None),
        WorkflowNotFoundError,
        "workflow 'linear' is not registered",
        id="run.rerunFrom unregistered workflow",
    ),
    pytest.param(
        rerun(stage="fourth"),
        StageNotFoundError,
        "stage 'fourth' is not part of workflow 'linear'",
        id="run.rerunFrom unknown stage",
    ),
    pytest.param(
        rerun(run=make_run(status=Status.RUNNING)),
        InvalidStateError,
        "run 'run-1' is RUNNING: only COMPLETED or FAILED runs can be rerun from stage 'second'",
        id="run.rerunFrom running run",
    ),
    pytest.param(
        rerun(run=make_run(status=Status.FAILED), stages=[], stage="third"),
        InvalidStateError,
        "run 'run-1' cannot be rerun from stage 'third': earlier stage 'first' is missing, "
        "not COMPLETED",
        id="run.rerunFrom past missing stages",
    ),
    pytest.param(
        start(run=None),
        RunNotFoundError,
        "workflow run 'run-1' does not exist",
        id="job.execute missing run",
    ),
    pytest.param(
        start(workflow=None),
        WorkflowNotFoundError,
        "workflow 'linear' is not registered",
        id="job.execute unregistered workflow",
    ),
    pytest.param(
        start(stage="fourth"),
        StageNotFoundError,
        "stage 'fourth' is not part of workflow 'linear'",
        id="job.execute unknown stage",
    ),
]


@pytest.mark.parametrize(("decide", "error", "message"), CASES)
def test_bad_input_is_a_failure_with_the_specific_error(
    decide: Callable[[Env], Result[Any, KernelError]], error: type[KernelError], message: str
) -> None:
    """SPEC §6.5: one error class per situation; its message names what was wrong."""
    result = decide(env())

    assert isinstance(result, Failure)
    failure = result.failure()
    assert type(failure) is error
    assert str(failure) == message


@pytest.mark.parametrize(("decide", "error", "message"), CASES)
def test_a_failure_uses_no_ids(
    decide: Callable[[Env], Result[Any, KernelError]], error: type[KernelError], message: str
) -> None:
    """SPEC §6.5: a refused command builds nothing, so it draws no fresh ids either."""
    drawn: list[str] = []

    def new_id() -> str:
        drawn.append("id")
        return f"id-{len(drawn)}"

    decide(Env(env().now, new_id, "cause"))

    assert drawn == []


def test_kernel_error_itself_cannot_be_raised() -> None:
    """SPEC §6.5: ``KernelError`` is abstract; callers catch it, code raises a subclass."""
    with pytest.raises(TypeError, match="KernelError is abstract"):
        KernelError("anything")


def test_kernel_errors_extend_the_matching_builtin() -> None:
    """SPEC §6.5: errors can be caught as the builtin they resemble."""
    assert issubclass(RunNotFoundError, LookupError)
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(InvalidStateError, RuntimeError)
