"""An async-batch stage: submit work elsewhere, suspend, and poll until it is done."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs

from kernel import (
    CompletionCheck,
    RunCreate,
    StageContext,
    Status,
    Suspend,
    WorkflowBuilder,
    define_async_batch_stage,
)
from testing import CollectingEventSink, FakeClock, create_test_kernel


class FakeBatchApi:
    """Stands in for a provider's batch API: a batch is ready at its third status check."""

    def __init__(self) -> None:
        self.checks: dict[str, int] = {}

    def submit(self, prompts: list[str]) -> str:
        batch_id = f"batch-{len(self.checks) + 1}"
        self.checks[batch_id] = 0
        return batch_id

    def is_done(self, batch_id: str) -> bool:
        self.checks[batch_id] += 1
        return self.checks[batch_id] >= 3


batch_api = FakeBatchApi()


# --8<-- [start:stage]
@attrs.frozen
class Prompts:
    prompts: list[str]


@attrs.frozen
class Answers:
    answers: list[str]


@attrs.frozen
class BatchConfig:
    poll_seconds: int = 60
    max_wait_minutes: int = 30


async def submit(ctx: StageContext[Prompts, BatchConfig]) -> Suspend:
    batch_id = batch_api.submit(ctx.input.prompts)
    # Everything check_completion needs goes into the (JSON) state.
    return Suspend(
        {"batch_id": batch_id, "prompts": ctx.input.prompts},
        poll_interval=timedelta(seconds=ctx.config.poll_seconds),
        max_wait=timedelta(minutes=ctx.config.max_wait_minutes),
    )


async def check(
    state: dict[str, Any], ctx: StageContext[Prompts, BatchConfig]
) -> CompletionCheck[Answers]:
    if not batch_api.is_done(state["batch_id"]):
        return CompletionCheck(ready=False)  # ask again after poll_interval
    answers = [f"answer to {prompt!r}" for prompt in state["prompts"]]
    return CompletionCheck(
        ready=True, output=Answers(answers=answers), metrics={"total_cost": 0.05}
    )


answer_stage = define_async_batch_stage(
    id="answer",
    name="Answer in a batch",
    input=Prompts,
    output=Answers,
    config=BatchConfig,
    execute=submit,
    check_completion=check,
)
batch_answers = (
    WorkflowBuilder("batch-answers", "Batch answers", input=Prompts, output=Answers)
    .pipe(answer_stage)
    .build()
)
# --8<-- [end:stage]


# --8<-- [start:run]
def main() -> None:
    clock = FakeClock()
    sink = CollectingEventSink()
    test = create_test_kernel(batch_answers, clock=clock, sink=sink)
    started = clock.now()
    created = test.dispatch(RunCreate(workflow_id="batch-answers", input={"prompts": ["hi"]}))
    # run_until_idle moves the fake clock to each poll time while only suspended work remains.
    test.run_until_idle()

    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"answers": ["answer to 'hi'"]}
    assert run.total_cost == Decimal("0.05")
    assert clock.now() - started == timedelta(minutes=3)  # checked at 1, 2 and 3 minutes
    assert sink.types == [
        "workflow:created",
        "workflow:started",
        "stage:started",
        "stage:suspended",
        "workflow:suspended",
        "stage:completed",
        "workflow:completed",
    ]


# --8<-- [end:run]


if __name__ == "__main__":
    main()
