"""``UuidIds``: random version-4 UUID strings, never the same twice, not even across a fork."""

from __future__ import annotations

import multiprocessing
import sys
import uuid
from typing import Any

import pytest

from adapters.ids import UuidIds


def test_ids_are_canonical_version_4_uuids() -> None:
    ids = UuidIds()
    for _ in range(600):  # more than one batch
        made = ids.new_id()
        parsed = uuid.UUID(made)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == made


def test_ids_never_repeat_across_instances() -> None:
    first, second = UuidIds(), UuidIds()
    made = [ids.new_id() for _ in range(5000) for ids in (first, second)]
    assert len(set(made)) == len(made)


def _child_ids(connection: Any) -> None:
    ids = UuidIds()
    connection.send([ids.new_id() for _ in range(20)])
    connection.close()


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
def test_a_forked_process_does_not_hand_out_its_parents_ids() -> None:
    ids = UuidIds()
    ids.new_id()  # the parent has ids made ahead when it forks
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_child_ids, args=(sending,))
    child.start()
    from_child = receiving.recv()
    child.join(10)
    from_parent = [ids.new_id() for _ in range(20)]
    assert not set(from_child) & set(from_parent)
