"""A worker process for the kill -9 test: ``python -m tests.batch.process_worker DB STATE
WORKER_ID [--die-after-submit]``.

It serves the ``summaries`` workflow on the SQLite file ``DB`` with a
file-backed :class:`~testing.FakeBatchProvider` whose state is ``STATE``, shared
with the other processes. With ``--die-after-submit`` the process kills itself
with SIGKILL the moment the provider has accepted a batch: the worst moment,
when the batch is paid for and its id is nowhere in the database.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from adapters import create_kernel
from adapters.hosts import WorkerHost
from adapters.sqlite import SqliteStore
from kernel import AIConfig, BatchItem, Kernel, Workflow
from kernel.ports import Store
from testing import FakeBatchProvider
from tests.batch.workflows import PRICES, Documents, Summaries, batch_workflow

POLL = timedelta(milliseconds=200)


class DyingBatchProvider(FakeBatchProvider):
    """A shared fake that, when told to, kills its process right after accepting."""

    def __init__(self, state_path: Path, die_after_submit: bool) -> None:
        super().__init__(state_path=state_path)
        self.die_after_submit = die_after_submit

    def submit(self, items: Sequence[BatchItem], tag: str) -> str:
        batch_id = super().submit(items, tag)
        if self.die_after_submit:
            os.kill(os.getpid(), signal.SIGKILL)
        return batch_id


def workflow() -> Workflow[Documents, Summaries]:
    return batch_workflow(poll_interval=POLL)


def kernel_for(store: Store, state_path: Path, die_after_submit: bool = False) -> Kernel:
    return create_kernel(
        workflow(),
        store=store,
        ai=AIConfig(providers=[], prices=PRICES),
        batch_providers=[DyingBatchProvider(state_path, die_after_submit)],
    )


def main(argv: Sequence[str]) -> None:
    db, state, worker_id = argv[:3]
    store = SqliteStore(db)
    kernel = kernel_for(store, Path(state), "--die-after-submit" in argv)
    host = WorkerHost(
        kernel,
        store,
        worker_id=worker_id,
        concurrency=1,
        orchestration_interval=timedelta(milliseconds=100),
        job_poll_interval=timedelta(milliseconds=50),
        stale_lease_threshold=timedelta(seconds=1),
        lease_renew_interval=timedelta(milliseconds=200),
    )
    host.run_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
