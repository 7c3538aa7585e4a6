"""The simulation's store: the in-memory store, watched.

:class:`SimStore` is an :class:`~adapters.memory.InMemoryStore` that records
every effect a committed transaction applied, with the record it replaced, so
the invariants can check each move (``RUNNING → COMPLETED``) rather than only
the state after a step; that can fail a write transaction after some of
its effects, to check that the store rolls all of them back; and whose next
transaction can read a snapshot taken earlier and check at commit that no row
it wrote changed meanwhile (:mod:`testing.simulate.snapshot`), so another actor
can commit between a command's load and its commit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
from attrs import frozen

from adapters.memory import InMemoryStore, MemoryTransaction, _Tables
from adapters.memory_signals import MISSING
from kernel.effects import InsertUsage, StoreEffect, UpdateJob, UpdateRun, UpdateStage
from kernel.errors import StaleVersionError, StoreError
from kernel.records import Job, WorkflowRun, WorkflowStage
from testing.simulate import snapshot


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
        self.writes_usage = False
        """Whether the transaction writes a ledger row of an AI call (``usage.record``
        from ``ctx.ai``; a batch item's row is not a call)."""

    def apply(self, effects: Sequence[StoreEffect]) -> None:
        if self._store.watch_usage:  # known before the first effect, which may fail
            self.writes_usage |= any(
                type(effect) is InsertUsage and effect.entry.kind != "batch" for effect in effects
            )
        for effect in effects:
            store = self._store
            if store.fail_after is not None and len(self.changes) >= store.fail_after:
                # The transaction's effect number ``fail_after`` fails: a write with
                # fewer effects commits, and the next one is tried.
                store.fail_after = None
                raise SimulatedStoreFailure("simulated store failure in the middle of a write")
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
        """Fail the next write transaction that applies more than this many effects,
        once it applied them (``None``: never)."""
        self.read_early: _Tables | None = None
        """The next transaction reads (and writes) this snapshot, and checks at commit
        that no row it wrote changed since (``None``: it works on the live tables)."""
        self.conflicts: list[str] = []
        """Why transactions that read early were refused at commit, since last taken."""
        self.lose_answer: int | None = None
        """Let this many more write transactions commit; the next one commits too, then
        raises as if it had failed (``None``: none)."""
        self.usage_lost = 0
        """Ledger writes of AI calls a ``store_failure`` rolled back, since last taken."""
        self.watch_usage = False
        """Whether to count them (the simulation has an ``AIConfig``)."""

    def snapshot(self) -> _Tables:
        """The tables as they are now, for a transaction that commits later."""
        return snapshot.take(self._tables)

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        with self._lock:
            if self._current is not None:
                raise StoreError("SimStore transactions do not nest")
            early, self.read_early = self.read_early, None
            tx = _Recording(self._tables if early is None else early, self)
            self._current = tx
            try:
                yield tx
                if early is not None:
                    self._commit(tx, early)
            except BaseException as exc:
                undo = list(tx._undo)
                tx.rollback()
                if early is None:
                    self.leftovers += _left_behind(self._tables, undo)
                if isinstance(exc, SimulatedStoreFailure) and tx.writes_usage:
                    self.usage_lost += 1
                raise
            finally:
                self._current = None
            self.committed += tx.changes
        if self.lose_answer is not None and (tx.changes or tx._undo):
            self.lose_answer -= 1
            if self.lose_answer >= 0:
                return
            self.lose_answer = None
            raise SimulatedStoreFailure("the commit went through, but its answer was lost")

    def _commit(self, tx: _Recording, early: _Tables) -> None:
        """Check that no row ``tx`` wrote changed since it was read; then make it live."""
        rows = snapshot.written(early, self._tables, tx._undo)
        conflict = snapshot.first_conflict(rows)
        if conflict is not None:
            self.conflicts.append(conflict)
            raise StaleVersionError("row", conflict, 0)
        live = _Recording(self._tables, self)
        # Each change against the record it replaces in the live tables.
        tx.changes = [Change(change.effect, live._before(change.effect)) for change in tx.changes]
        snapshot.publish(rows, early, self._tables, tx._logs_before)

    def take_usage_lost(self) -> int:
        """How many usage ledger writes failed on purpose since the last call."""
        lost, self.usage_lost = self.usage_lost, 0
        return lost

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
    names |= {id(rows): f"stages of {run_id}" for run_id, rows in tables.stages.items()}
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
