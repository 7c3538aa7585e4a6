"""``deploy``: kernels of several app releases over one store, as during a rolling
deploy; each draws ids of its own, as separate processes would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kernel import Workflow
from kernel.ports import Store
from testing import CollectingEventSink, FakeClock, SequentialIds, create_test_kernel
from tests.harness import TK

Deploy = Callable[..., TK]
"""``deploy(name, *workflows)``: a worker holding ``workflows`` on the shared store."""


@pytest.fixture
def deploy(store: Store, clock: FakeClock, sink: CollectingEventSink) -> Iterator[Deploy]:
    made: list[TK] = []

    def make(name: str, *workflows: Workflow[Any, Any]) -> TK:
        tk = create_test_kernel(
            *workflows, store=store, clock=clock, sink=sink, ids=SequentialIds(name)
        )
        made.append(tk)
        return tk

    yield make
    for tk in made:
        # Each kernel's stage runner may own an event loop thread for async stages.
        close = getattr(tk.kernel.runner, "close", None)
        if close is not None:
            close()
