"""Choosing a store: the same workflow on SQLite and on PostgreSQL."""

import os
import tempfile
from pathlib import Path

import attrs
import psycopg

from adapters import create_kernel
from adapters.memory import InMemoryStore
from kernel import RunClaimPending, RunCreate, StageContext, WorkflowBuilder, define_stage
from kernel.ports import Store
from testing.conformance import StoreConformance


@attrs.frozen
class Greeting:
    name: str


@attrs.frozen
class NoConfig:
    pass


def shout(ctx: StageContext[Greeting, NoConfig]) -> Greeting:
    return Greeting(name=ctx.input.name.upper())


hello = (
    WorkflowBuilder("hello", "Hello", input=Greeting, output=Greeting)
    .pipe(
        define_stage(
            id="shout",
            name="Shout",
            input=Greeting,
            output=Greeting,
            config=NoConfig,
            execute=shout,
        )
    )
    .build()
)


def drive(store: Store) -> object:
    """Create one run and work until nothing is left; return the run's output."""
    kernel = create_kernel(hello, store=store)
    created = kernel.dispatch(RunCreate(workflow_id="hello", input={"name": "ada"}))
    kernel.dispatch(RunClaimPending(worker_id="w1"))
    while kernel.execute_jobs("w1"):
        pass
    run = store.get_run(created.workflow_run_id)
    assert run is not None
    return run.output


def sqlite_example(directory: Path) -> None:
    # --8<-- [start:sqlite]
    from adapters.sqlite import SqliteStore

    store = SqliteStore(directory / "workflows.db")  # created and migrated on first use
    assert drive(store) == {"name": "ADA"}
    store.close()

    reopened = SqliteStore(directory / "workflows.db")  # the rows are still there
    assert len(reopened.list_runs()) == 1
    reopened.close()
    # --8<-- [end:sqlite]


def postgres_example(dsn: str) -> None:
    # --8<-- [start:postgres]
    from adapters.postgres import PostgresStore

    store = PostgresStore(dsn, schema="docs_example", pool_size=4)
    store.migrate()  # optional: the first transaction would migrate too
    assert drive(store) == {"name": "ADA"}
    store.drop_schema()  # tests only: removes every table of the schema
    store.close()
    # --8<-- [end:postgres]


# --8<-- [start:conformance]
class TestMyStore(StoreConformance):
    """Certifies a store: pytest runs every conformance case against it."""

    def make_store(self) -> Store:
        return InMemoryStore()  # return your store here
        # --8<-- [end:conformance]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_example(Path(tmp))
    dsn = os.environ.get("WFK_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error:
        if os.environ.get("CI"):
            raise
        return  # no server here: the SQLite part still ran
    postgres_example(dsn)


if __name__ == "__main__":
    main()
