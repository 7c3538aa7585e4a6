"""Fixtures of the dashboard tests: a test kernel over an in-memory store with the
dashboard's workflows, and a Starlette ``TestClient`` over the dashboard."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from adapters.memory import InMemoryStore
from adapters.ui import create_app
from kernel import RunCreate
from testing import FakeClock, TestKernel, create_test_kernel
from tests.harness import T0
from tests.ui.workflows import approval, exploding, pipeline

Client = Callable[..., TestClient]


@pytest.fixture
def tk() -> TestKernel:
    return create_test_kernel(
        pipeline, exploding, approval, store=InMemoryStore(), clock=FakeClock(T0)
    )


@pytest.fixture
def client(tk: TestKernel) -> Iterator[Client]:
    """``client(**create_app options)``: a TestClient over the dashboard of the kernel
    given as ``kernel=`` (its store), by default ``tk``'s."""
    opened: list[TestClient] = []

    def make(**options: Any) -> TestClient:
        options.setdefault("kernel", tk.kernel)
        store = options["kernel"].store if options["kernel"] is not None else tk.store
        made = TestClient(create_app(store, **options))
        opened.append(made)
        return made

    yield make
    for made in opened:
        made.close()


def create(tk: TestKernel[Any, Any], workflow_id: str, title: str = "report", **fields: Any) -> str:
    """Create a run of ``workflow_id`` with input ``{"title": title}``; its id."""
    return tk.dispatch(
        RunCreate(workflow_id=workflow_id, input={"title": title}, **fields)
    ).workflow_run_id
