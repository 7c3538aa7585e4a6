"""Retention: purge finished runs past their age, from code, from a worker, from the CLI."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import attrs

from adapters.cli import main as wfk
from adapters.hosts import WorkerHost
from adapters.sqlite import SqliteStore
from kernel import (
    InvalidInputError,
    Kernel,
    RunCreate,
    RunsPurge,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from kernel.ports import Store
from testing import FakeClock, create_test_kernel


@attrs.frozen
class Order:
    number: int


@attrs.frozen
class NoConfig:
    pass


def ship(ctx: StageContext[Order, NoConfig]) -> Order:
    ctx.storage.save("label", {"order": ctx.input.number})  # owned by the run: purged with it
    return ctx.input


ship_stage = define_stage(
    id="ship", name="Ship", input=Order, output=Order, config=NoConfig, execute=ship
)
orders = WorkflowBuilder("orders", "Orders", input=Order, output=Order).pipe(ship_stage).build()


# --8<-- [start:command]
def test_purge_runs_older_than_thirty_days() -> None:
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    test = create_test_kernel(orders, clock=clock)
    old = test.dispatch(RunCreate(workflow_id="orders", input={"number": 1})).workflow_run_id
    test.run_until_idle()
    clock.advance(timedelta(days=20))
    recent = test.dispatch(RunCreate(workflow_id="orders", input={"number": 2})).workflow_run_id
    test.run_until_idle()
    clock.advance(timedelta(days=15))  # old finished 35 days ago, recent 15

    preview = test.dispatch(RunsPurge(older_than=timedelta(days=30), dry_run=True))
    assert (preview.purged, preview.run_ids) == (0, (old,))  # a dry run deletes nothing

    result = test.dispatch(RunsPurge(older_than=timedelta(days=30)))
    assert (result.purged, result.run_ids) == (1, (old,))
    assert test.store.get_run(old) is None
    assert test.store.get_outbox(old) == []  # and its stages, jobs, logs, usage, signals
    assert test.store.get_blob(f"runs/{old}/storage/label") == (False, None)
    assert test.store.get_run(recent) is not None


# --8<-- [end:command]


# --8<-- [start:batches]
def purge_everything_due(kernel: Kernel, older_than: timedelta) -> int:
    """Purge in batches of 500 until none is left (what ``wfk purge`` does)."""
    total = 0
    while True:
        result = kernel.dispatch(RunsPurge(older_than=older_than, limit=500))
        total += result.purged
        if result.purged < 500:
            return total


# --8<-- [end:batches]


def test_batches() -> None:
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    test = create_test_kernel(orders, clock=clock)
    for number in range(3):
        test.dispatch(RunCreate(workflow_id="orders", input={"number": number}))
    test.run_until_idle()
    clock.advance(timedelta(days=2))
    assert purge_everything_due(test.kernel, timedelta(days=1)) == 3


# --8<-- [start:refused]
def test_what_a_purge_refuses() -> None:
    try:
        RunsPurge(older_than=timedelta(days=30), statuses=(Status.RUNNING,))
    except InvalidInputError as error:
        assert "statuses: only finished runs can be purged" in str(error)
    else:
        raise AssertionError("refused when built")


# --8<-- [end:refused]


def worker(kernel: Kernel, store: Store) -> WorkerHost:
    # --8<-- [start:worker]
    host = WorkerHost(
        kernel,
        store,
        worker_id="worker-1",
        purge_after=timedelta(days=30),  # off unless given; checked at most once a minute
    )
    # --8<-- [end:worker]
    return host


def test_the_worker_option() -> None:
    with TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "app.db")
        try:
            host = worker(create_test_kernel(orders, store=store).kernel, store)
            assert host.stats().phase == "new"
        finally:
            store.close()


def test_the_command_line() -> None:
    with TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'app.db'}"
        store = SqliteStore(Path(folder) / "app.db")
        try:
            past = FakeClock(datetime.now(UTC) - timedelta(days=40))
            test = create_test_kernel(orders, store=store, clock=past)
            test.dispatch(RunCreate(workflow_id="orders", input={"number": 1}))
            test.run_until_idle()
        finally:
            store.close()
        assert wfk(["purge", "--older-than", "30d", "--dry-run", "--store", url]) == 0
        assert wfk(["purge", "--older-than", "30d", "--store", url]) == 0
