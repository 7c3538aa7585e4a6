"""Fixtures: a fake clock, a collecting sink, and ``make_tk`` over every store.

``store`` is parametrised over the three stores: in-memory, SQLite (a file in
the test's temporary directory) and PostgreSQL (a schema of its own, dropped
afterwards). Tests that take ``store`` or ``make_tk`` therefore run once per store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from adapters.memory import InMemoryStore
from adapters.sqlite import SqliteStore
from kernel import Workflow
from kernel.ports import EventSink, Store
from testing import CollectingEventSink, FakeClock, create_test_kernel
from tests.harness import T0, TK, MakeKernel, StoreFactory
from tests.simulate.summary import (  # noqa: F401  (the simulation tests' session summary)
    pytest_runtest_logreport,
    pytest_terminal_summary,
)


def _postgres(_: Path) -> Store:
    """A PostgreSQL store in a schema of its own (skipped, or failed under CI, without
    a server)."""
    from adapters.postgres import PostgresStore
    from tests.postgres_support import fresh_schema, require_postgres

    return PostgresStore(require_postgres(), schema=fresh_schema(), pool_size=2)


STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": lambda _: InMemoryStore(),
    "sqlite": lambda tmp_path: SqliteStore(Path(tmp_path) / "wf.db"),
    "postgres": _postgres,
}

collect_ignore_glob = ["typing/cases/*"]  # snippets for mypy, not modules to import

# Property tests keep no example database in the repository and may take their time
# on a busy machine: they are about behaviour, not speed.
settings.register_profile("workflow-kernel", database=None, deadline=None)
settings.load_profile("workflow-kernel")


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = STORE_FACTORIES[request.param](tmp_path)
    yield made
    drop = getattr(made, "drop_schema", None)
    if drop is not None:
        drop()
    made.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def sink() -> CollectingEventSink:
    return CollectingEventSink()


@pytest.fixture
def make_tk(store: Store, clock: FakeClock, sink: CollectingEventSink) -> Iterator[MakeKernel]:
    default_sink = sink
    made: list[TK] = []

    def make(*workflows: Workflow[Any, Any], sink: EventSink | None = None) -> TK:
        tk = create_test_kernel(*workflows, store=store, clock=clock, sink=sink or default_sink)
        made.append(tk)
        return tk

    yield make
    for tk in made:
        # Each kernel's stage runner may own an event loop thread for async stages.
        close = getattr(tk.kernel.runner, "close", None)
        if close is not None:
            close()
