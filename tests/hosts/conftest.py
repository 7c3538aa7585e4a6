"""Fixtures of the host tests: ``backend``, a SQLite file or a PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hosts.backends import BACKENDS, Backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A database for real workers: a test that takes it runs on SQLite and on PostgreSQL."""
    made = Backend(request.param, tmp_path)
    yield made
    made.close()
