"""A worker host in your own program: start it, create runs, stop it (drain, then return)."""

import tempfile
import time
from datetime import timedelta
from pathlib import Path

import attrs

from adapters import create_kernel
from adapters.demo import SAMPLE_DOCUMENTS, document_pipeline
from adapters.hosts import WorkerHost
from adapters.sqlite import SqliteStore
from kernel import RunCreate, Status


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        # --8<-- [start:worker]
        store = SqliteStore(Path(data_dir) / "app.db")  # where your app keeps its data
        kernel = create_kernel(document_pipeline, store=store)
        host = WorkerHost(
            kernel,
            store,
            worker_id="worker-1",
            concurrency=4,  # job slots: at most 4 stages run at once
            orchestration_interval=timedelta(milliseconds=100),  # claim, poll, reap, flush
            job_poll_interval=timedelta(milliseconds=50),  # idle slots look for jobs
            stale_lease_threshold=timedelta(seconds=60),  # reap the jobs of dead workers
            lease_renew_interval=timedelta(seconds=15),  # while a stage runs
            drain_timeout=timedelta(seconds=30),  # on stop, let running stages finish
        )
        host.start()  # a background thread; run_forever() blocks and handles SIGTERM

        created = kernel.dispatch(
            RunCreate(workflow_id=document_pipeline.id, input=attrs.asdict(SAMPLE_DOCUMENTS[0]))
        )
        deadline = time.monotonic() + 10
        while (run := store.get_run(created.workflow_run_id)) and not run.is_terminal:
            assert time.monotonic() < deadline, "the run should finish in well under 10 s"
            time.sleep(0.05)

        stats = host.stop()  # stop dequeuing, drain, flush the outbox
        # --8<-- [end:worker]
        assert run is not None and run.status == Status.COMPLETED
        assert run.output["categories"] == ["finance"]
        assert stats.phase == "stopped"
        assert stats.jobs_processed == 4
        store.close()


if __name__ == "__main__":
    main()
