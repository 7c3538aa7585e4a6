"""Fixtures: a fake clock, a collecting sink, and ``make_tk`` over every store.

``store`` is parametrised over the store adapters that import here: the
in-memory store always, and ``adapters.sqlite.SqliteStore`` (on a file in the
test's temporary directory) once that adapter exists. Tests that take
``store`` or ``make_tk`` therefore run once per store.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from adapters.memory import InMemoryStore
from kernel import Workflow
from kernel.ports import EventSink, Store
from testing import CollectingEventSink, FakeClock, create_test_kernel
from tests.harness import T0, TK, MakeKernel, StoreFactory


def _store_factories() -> dict[str, StoreFactory]:
    factories: dict[str, StoreFactory] = {"memory": lambda _: InMemoryStore()}
    try:
        sqlite = importlib.import_module("adapters.sqlite")
    except ImportError:
        return factories
    sqlite_store = getattr(sqlite, "SqliteStore", None)
    if sqlite_store is not None:
        factories["sqlite"] = lambda tmp_path: sqlite_store(Path(tmp_path) / "wf.db")
    return factories


STORE_FACTORIES = _store_factories()

# Property tests keep no example database in the repository and may take their time
# on a busy machine: they are about behaviour, not speed.
settings.register_profile("workflow-kernel", database=None, deadline=None)
settings.load_profile("workflow-kernel")


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = STORE_FACTORIES[request.param](tmp_path)
    yield made
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
