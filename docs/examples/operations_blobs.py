"""Large payloads: values over the inline limit live in a blob store, rows keep a reference."""

from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import attrs

from adapters import create_kernel
from adapters.blobs import FileBlobStore, sweep
from adapters.hosts import WorkerHost
from adapters.sqlite import SqliteStore
from kernel import (
    Kernel,
    RunCreate,
    StageContext,
    WorkflowBuilder,
    WorkflowCompleted,
    define_stage,
)
from testing import create_test_kernel


@attrs.frozen
class Document:
    text: str


@attrs.frozen
class NoConfig:
    pass


def shout(ctx: StageContext[Document, NoConfig]) -> Document:
    return Document(ctx.input.text.upper())


documents = (
    WorkflowBuilder("documents", "Documents", input=Document, output=Document)
    .pipe(
        define_stage(
            id="shout",
            name="Shout",
            input=Document,
            output=Document,
            config=NoConfig,
            execute=shout,
        )
    )
    .build()
)


def wire(folder: Path) -> tuple[Kernel, WorkerHost]:
    # --8<-- [start:wire]
    store = SqliteStore(folder / "app.db")
    kernel = create_kernel(
        documents,
        store=store,
        blobs=FileBlobStore(folder / "app.blobs"),  # beside the database file
        inline_limit=256 * 1024,  # the default: JSON over 256 KiB becomes a blob
    )
    host = WorkerHost(kernel, kernel.store, worker_id="worker-1")  # kernel.store loads blobs
    # --8<-- [end:wire]
    return kernel, host


def test_wiring() -> None:
    with TemporaryDirectory() as folder:
        kernel, host = wire(Path(folder))
        try:
            assert host.stats().phase == "new"
        finally:
            kernel.store.close()


# --8<-- [start:test]
def test_a_large_document_is_a_blob_in_the_row_and_a_value_to_readers() -> None:
    test = create_test_kernel(documents, inline_limit=1_000)  # blobs: a MemoryBlobStore
    created = test.dispatch(RunCreate(workflow_id="documents", input={"text": "a" * 5_000}))
    test.run_until_idle()

    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.output == {"text": "A" * 5_000}  # loaded
    [completed] = [e for e in test.sink.events if isinstance(e, WorkflowCompleted)]
    assert completed.output == {"$blob": completed.output["$blob"]}  # the sink gets the ref
    assert test.blobs is not None and test.blobs.get(completed.output["$blob"]).startswith(b'{"')


# --8<-- [end:test]


def test_sweep() -> None:
    with TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "app.db")
        try:
            # --8<-- [start:sweep]
            blobs = FileBlobStore(Path(folder) / "app.blobs")
            deleted = sweep(store, blobs, older_than=timedelta(hours=1))
            # --8<-- [end:sweep]
            assert deleted == 0
        finally:
            store.close()
