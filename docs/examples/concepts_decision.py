"""Inside the kernel: a decision is a pure function; the store checks versions."""

from datetime import UTC, datetime

import attrs
from attrs import evolve

from adapters.memory import InMemoryStore
from kernel import RunCreate, StageContext, StaleVersionError, WorkflowBuilder, define_stage
from kernel.decisions import run_create
from kernel.decisions.context import Env
from kernel.effects import AppendOutbox, InsertRun, StoreEffect, UpdateRun
from testing import SequentialIds


@attrs.frozen
class Order:
    order_id: str


@attrs.frozen
class NoConfig:
    pass


def accept(ctx: StageContext[Order, NoConfig]) -> Order:
    return ctx.input


accept_stage = define_stage(
    id="accept", name="Accept", input=Order, output=Order, config=NoConfig, execute=accept
)
orders = WorkflowBuilder("orders", "Orders", input=Order, output=Order).pipe(accept_stage).build()


# --8<-- [start:decision]
def decide_a_run_create() -> tuple[StoreEffect, ...]:
    # The same state, command, time and ids always give the same decision.
    env = Env(
        now=datetime(2025, 1, 1, tzinfo=UTC),
        new_id=SequentialIds("x").new_id,
        causation_id="command-1",
    )
    decision = run_create.decide(
        RunCreate(workflow_id="orders", input={"order_id": "A-1"}), orders, env
    )
    made = decision.unwrap()  # a returns Result: Success here (a Failure would raise)
    assert made.result.workflow_run_id == "x-1"
    insert, append = made.effects
    assert isinstance(insert, InsertRun) and insert.run.status == "PENDING"
    assert isinstance(append, AppendOutbox) and append.event.type == "workflow:created"
    # Nothing was written anywhere: effects are data until a store applies them.
    return made.effects


# --8<-- [end:decision]


# --8<-- [start:versions]
def refuse_a_stale_update() -> None:
    store = InMemoryStore()
    with store.transaction() as tx:
        tx.apply(decide_a_run_create())
    run = store.get_run("x-1")
    assert run is not None and run.version == 1

    # Two writers read version 1; the first update wins and bumps it to 2 ...
    with store.transaction() as tx:
        tx.apply([UpdateRun(evolve(run, priority=9, version=2), expected_version=1)])
    # ... and the second, still saying "I read version 1", is refused.
    try:
        with store.transaction() as tx:
            tx.apply([UpdateRun(evolve(run, priority=1, version=2), expected_version=1)])
    except StaleVersionError as error:
        assert str(error) == "run 'x-1' changed concurrently: expected version 1"
    else:
        raise AssertionError("expected StaleVersionError")
    stored = store.get_run("x-1")
    assert stored is not None and stored.priority == 9


# --8<-- [end:versions]


def main() -> None:
    decide_a_run_create()
    refuse_a_stale_update()


if __name__ == "__main__":
    main()
