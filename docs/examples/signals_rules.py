"""Two stages waiting for the same signal: who takes which."""

import attrs

from kernel import (
    RunCreate,
    RunSignal,
    StageContext,
    Status,
    WorkflowBuilder,
    define_signal_stage,
    define_stage,
)
from testing import create_test_kernel


# --8<-- [start:workflow]
@attrs.frozen
class Contract:
    title: str


@attrs.frozen
class Signature:
    name: str


@attrs.frozen
class Signed:
    title: str
    signatures: list[str]


@attrs.frozen
class NoConfig:
    pass


def prepare(ctx: StageContext[Contract, NoConfig]) -> Contract:
    return ctx.input


def seal(ctx: StageContext[None, NoConfig]) -> Signed:
    first, second = ctx.require(first_stage), ctx.require(second_stage)
    return Signed(title=ctx.require(prepare_stage).title, signatures=[first.name, second.name])


prepare_stage = define_stage(
    id="prepare", name="Prepare", input=Contract, output=Contract, config=NoConfig, execute=prepare
)
# Two stages wait for the same signal, so they must share its output type.
first_stage = define_signal_stage(id="first", name="First", signal="sign", output=Signature)
second_stage = define_signal_stage(id="second", name="Second", signal="sign", output=Signature)
seal_stage = define_stage(
    id="seal", name="Seal", input=None, output=Signed, config=NoConfig, execute=seal
)
contract = (
    WorkflowBuilder("contract", "Contract", input=Contract, output=Signed)
    .pipe(prepare_stage)
    .pipe(first_stage)
    .pipe(second_stage)
    .pipe(seal_stage)
    .build()
)
# --8<-- [end:workflow]


# --8<-- [start:order]
def test_kept_signals_are_taken_in_arrival_order_once_each() -> None:
    test = create_test_kernel(contract)
    run_id = test.dispatch(
        RunCreate(workflow_id="contract", input={"title": "Lease"})
    ).workflow_run_id

    # Both sign before any stage waits: both signals are kept, in arrival order.
    for name in ("ana", "bo"):
        assert test.dispatch(RunSignal(run_id, "sign", {"name": name})).buffered
    test.run_until_idle()

    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"title": "Lease", "signatures": ["ana", "bo"]}
    taken = [(signal.payload, signal.stage_id) for signal in test.store.get_signals(run_id)]
    assert taken == [({"name": "ana"}, "first"), ({"name": "bo"}, "second")]


# --8<-- [end:order]


# --8<-- [start:parallel]
def test_in_a_parallel_group_the_lowest_stage_number_takes_a_signal() -> None:
    both = (
        WorkflowBuilder("both", "Both", input=Contract, output=Signed)
        .pipe(prepare_stage)
        .parallel([first_stage, second_stage])  # stage numbers 2 and 3, waiting together
        .pipe(seal_stage)
        .build()
    )
    test = create_test_kernel(both)
    run_id = test.dispatch(RunCreate(workflow_id="both", input={"title": "Lease"})).workflow_run_id
    test.run_until_idle()  # both wait, so the run parks as SUSPENDED

    test.dispatch(RunSignal(run_id, "sign", {"name": "ana"}))
    waiting = {s.stage_id: s.status for s in test.store.get_stages(run_id)}
    assert (waiting["first"], waiting["second"]) == (Status.COMPLETED, Status.SUSPENDED)
    run = test.store.get_run(run_id)
    assert run is not None and run.status == Status.SUSPENDED  # still every active stage waits

    test.dispatch(RunSignal(run_id, "sign", {"name": "bo"}))
    test.run_until_idle()
    run = test.store.get_run(run_id)
    assert run is not None and run.output == {"title": "Lease", "signatures": ["ana", "bo"]}


# --8<-- [end:parallel]
