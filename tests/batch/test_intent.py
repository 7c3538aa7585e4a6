"""``batch.intent``: the intent is written only for the stage's own attempt, once per
tag, never over a later generation (SPEC §12)."""

from __future__ import annotations

from datetime import UTC, datetime

from attrs import evolve
from returns.result import Failure, Success

from kernel import BatchIntent, BatchIntentResult, InvalidInputError, RunCreate, Status
from kernel.decisions.batch_intent import Intending, decide
from kernel.decisions.context import Env
from kernel.effects import UpdateStage
from kernel.llm_batch_state import BatchProgress
from kernel.records import WorkflowRun, WorkflowStage
from testing import FakeBatchProvider, SequentialIds
from tests.batch.workflows import DOCS, batch_kernel, batch_workflow

T0 = datetime(2025, 1, 1, tzinfo=UTC)
STAGE = batch_workflow().stage("summarise")
RUN = WorkflowRun(
    id="r1", workflow_id="summaries", workflow_name="Summaries", status=Status.RUNNING,
    input={}, created_at=T0,
)  # fmt: skip
RECORD = WorkflowStage(
    id="s1", workflow_run_id="r1", stage_id="summarise", stage_name="Summarise",
    stage_number=1, execution_group=1, status=Status.RUNNING, attempt=2, created_at=T0,
)  # fmt: skip


def env() -> Env:
    return Env(now=T0, new_id=SequentialIds().new_id, causation_id="c1")


def intent(generation: int = 1, tag: str = "t1", attempt: int = 2) -> BatchIntent:
    progress = BatchProgress(provider="fakebatch", tag=tag, generation=generation)
    return BatchIntent(
        workflow_run_id="r1", stage_id="summarise", attempt=attempt, provider="fakebatch",
        tag=tag, generation=generation, state=progress.to_state(),
    )  # fmt: skip


def test_the_intent_becomes_the_stage_state() -> None:
    cmd = intent()
    match decide(cmd, Intending(RUN, RECORD, STAGE), env()):
        case Success(made):
            assert made.result == BatchIntentResult(recorded=True)
            (update,) = made.effects
            assert isinstance(update, UpdateStage)
            assert update.stage.suspended_state == cmd.state
        case Failure(error):
            raise AssertionError(error)


def test_an_attempt_that_is_over_records_nothing() -> None:
    match decide(intent(attempt=1), Intending(RUN, RECORD, STAGE), env()):
        case Success(made):
            assert made.result.recorded is False and made.effects == ()
            assert made.result.reason == "stage 'summarise' is not at attempt 1"
        case Failure(error):
            raise AssertionError(error)


def test_an_intent_recorded_before_hands_back_its_batch_id() -> None:
    known = BatchProgress(provider="fakebatch", tag="t1", generation=1, batch_id="b-7")
    record = evolve(RECORD, suspended_state=known.to_state())
    match decide(intent(), Intending(RUN, record, STAGE), env()):
        case Success(made):
            assert made.result == BatchIntentResult(recorded=True, batch_id="b-7", earlier=True)
            assert made.effects == ()
        case Failure(error):
            raise AssertionError(error)


def test_an_intent_recorded_before_without_a_batch_id_says_so() -> None:
    """A worker whose lease was reaped runs the same attempt number as the worker that
    took over: if that one recorded the intent (and maybe submitted), the answer says
    the intent is earlier, and the stage asks the provider for the tag instead of
    submitting again (found by the simulator: the provider was paid twice)."""
    pending = BatchProgress(provider="fakebatch", tag="t1", generation=1)
    record = evolve(RECORD, suspended_state=pending.to_state())
    match decide(intent(), Intending(RUN, record, STAGE), env()):
        case Success(made):
            assert made.result == BatchIntentResult(recorded=True, earlier=True)
            assert made.effects == ()
        case Failure(error):
            raise AssertionError(error)


def test_an_older_generation_is_refused() -> None:
    later = BatchProgress(provider="fakebatch", tag="t2", generation=2, batch_id="b-8")
    record = evolve(RECORD, suspended_state=later.to_state())
    match decide(intent(), Intending(RUN, record, STAGE), env()):
        case Success(made):
            assert made.result.recorded is False and made.effects == ()
        case Failure(error):
            raise AssertionError(error)


def test_a_stage_that_is_not_a_batch_stage_is_invalid_input() -> None:
    tk = batch_kernel(FakeBatchProvider())
    run_id = tk.dispatch(RunCreate(workflow_id="summaries", input=DOCS)).workflow_run_id
    try:
        tk.dispatch(evolve(intent(), workflow_run_id=run_id, stage_id="elsewhere"))
    except InvalidInputError as error:
        assert "'elsewhere' is not an LLM batch stage of 'fakebatch'" in str(error)
    else:
        raise AssertionError("expected InvalidInputError")
