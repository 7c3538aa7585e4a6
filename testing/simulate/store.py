"""The simulation's store: the in-memory store, watched.

:class:`SimStore` is an :class:`~adapters.memory.InMemoryStore` that records
every effect a committed transaction applied, with the record it replaced, so
the invariants can check each move (``RUNNING → COMPLETED``) rather than only
the state after a step; and that can fail a write transaction after some of
its effects, to check that the store rolls all of them back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
from attrs import frozen

from adapters.memory import InMemoryStore, MemoryTransaction, _Tables
from adapters.memory_signals import MISSING
from kernel.effects import StoreEffect, UpdateJob, UpdateRun, UpdateStage
from kernel.errors import StoreError
from kernel.records import Job, WorkflowRun, WorkflowStage


class SimulatedStoreFailure(StoreError):
    """The store failed a write on purpose (a ``store_failure`` fault)."""


@frozen
class Change:
    """One effect a committed transaction applied, and the record it replaced (if any)."""

    effect: StoreEffect
    before: WorkflowRun | WorkflowStage | Job | None


class _Recording(MemoryTransaction):
    def __init__(self, tables: _Tables, store: SimStore) -> None:
        super().__init__(tables)
        self._store = store
        self.changes: list[Change] = []

    def apply(self, effects: Sequence[StoreEffect]) -> None:
        for effect in effects:
            store = self._store
            if store.fail_after is not None:
                if store.fail_after == 0:
                    store.fail_after = None
                    raise SimulatedStoreFailure("simulated store failure in the middle of a write")
                store.fail_after -= 1
            self.changes.append(Change(effect, self._before(effect)))
            self._apply_one(effect)

    def _before(self, effect: StoreEffect) -> WorkflowRun | WorkflowStage | Job | None:
        """The record as it was when the transaction began (a lease, say, writes the
        job directly before the start's ``UpdateJob``)."""
        match effect:
            case UpdateRun(run):
                return self._original(self.t.runs, run.id)
            case UpdateStage(stage):
                stages = self.t.stages.get(stage.workflow_run_id, {})
                return self._original(stages, stage.stage_id)
            case UpdateJob(job):
                return self._original(self.t.jobs, job.id)
        return None

    def _original(
        self, table: dict[str, Any], key: str
    ) -> WorkflowRun | WorkflowStage | Job | None:
        found: WorkflowRun | WorkflowStage | Job | None = table.get(key)
        for written, written_key, old in self._undo:
            if written is table and written_key == key:
                found = None if old is MISSING else old
                break
        return found


class SimStore(InMemoryStore):
    """An in-memory store whose committed changes the simulator reads after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.committed: list[Change] = []
        """Changes committed since the simulator last took them (:meth:`take_changes`)."""
        self.leftovers: list[str] = []
        """What rolled-back transactions left in the tables (each a broken rollback)."""
        self.fail_after: int | None = None
        """Fail the write once this many more effects were applied (``None``: never)."""

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        with self._lock:
            if self._current is not None:
                raise StoreError("SimStore transactions do not nest")
            tx = _Recording(self._tables, self)
            self._current = tx
            try:
                yield tx
            except BaseException:
                undo = list(tx._undo)
                tx.rollback()
                self.leftovers += _left_behind(self._tables, undo)
                raise
            finally:
                self._current = None
            self.committed += tx.changes

    def take_changes(self) -> list[Change]:
        """The changes committed since the last call."""
        changes, self.committed = self.committed, []
        return changes

    @property
    def tables(self) -> _Tables:
        """The live tables, for the invariants (read them, never write them)."""
        return self._tables


def _left_behind(tables: _Tables, undo: Sequence[tuple[dict[Any, Any], Any, Any]]) -> list[str]:
    """What a rollback left changed: each record not back to what it was before the
    transaction (the first entry of the undo log for it)."""
    names = {id(getattr(tables, f.name)): f.name for f in attrs.fields(type(tables))}
    left: list[str] = []
    seen: set[tuple[int, Any]] = set()
    for table, key, old in undo:
        if (id(table), key) in seen:
            continue
        seen.add((id(table), key))
        now = table.get(key, MISSING)
        if now is not old and now != old:
            what = "was added" if old is MISSING else "kept its change"
            left.append(f"{names.get(id(table), 'a table')} {key!r} {what}")
    return left
