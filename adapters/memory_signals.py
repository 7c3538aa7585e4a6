"""Signals and schedules of ``InMemoryStore``: its transaction's loads and effects
for them, and the store's queries, as mixins of the classes in :mod:`adapters.memory`.

Signals are kept in a dict in arrival order; schedules by id. Writes go
through the transaction's undo log (``_set``/``_pop``), so a rollback undoes
them with everything else.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from datetime import datetime
from typing import Any, Protocol, assert_never

from kernel.copying import evolve
from kernel.effects import (
    ConsumeSignal,
    DeleteSchedule,
    InsertSchedule,
    InsertSignal,
    UpdateSchedule,
)
from kernel.errors import StaleVersionError, StoreError
from kernel.records import SignalRecord
from kernel.schedules import ScheduleRecord

SignalScheduleEffect = (
    InsertSignal | ConsumeSignal | InsertSchedule | UpdateSchedule | DeleteSchedule
)
"""The effects :meth:`SignalScheduleLoads.apply_signal_schedule` applies."""


class SignalScheduleTables(Protocol):
    """The tables these mixins use (``adapters.memory._Tables`` has them)."""

    # signal id -> record, in arrival order
    signals: dict[str, SignalRecord]
    schedules: dict[str, ScheduleRecord]


MISSING: Any = object()
"""An undo entry's old value for a key that was absent."""


class SignalScheduleLoads:
    """The undo log's writes and the signal and schedule part of ``MemoryTransaction``."""

    t: SignalScheduleTables
    _undo: list[tuple[dict[Any, Any], Any, Any]]

    def _set(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        self._undo.append((table, key, table.get(key, MISSING)))
        table[key] = value

    def _pop(self, table: dict[Any, Any], key: Any) -> None:
        if key in table:
            self._undo.append((table, key, table[key]))
            del table[key]

    def _insert(self, table: dict[Any, Any], key: Any, value: Any, what: str) -> None:
        """Add a new record; ``what`` names it in the error when the key is taken."""
        if key in table:
            raise StoreError(f"{what} already exists")
        self._set(table, key, value)

    def _replace(self, table: dict[str, Any], record: Any, expected: int, entity: str) -> None:
        """Overwrite ``record`` (keyed by its id) if the stored one is at ``expected``."""
        current = table.get(record.id)
        if current is None or current.version != expected:
            raise StaleVersionError(entity, record.id, expected)
        self._set(table, record.id, record)

    def buffered_signals(self, run_id: str) -> list[SignalRecord]:
        return [
            signal
            for signal in self.t.signals.values()
            if signal.workflow_run_id == run_id and signal.consumed_at is None
        ]

    def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        return self.t.schedules.get(schedule_id)

    def due_schedules(
        self, now: datetime, limit: int, workflow_ids: Collection[str] | None = None
    ) -> list[ScheduleRecord]:
        due = [
            schedule
            for schedule in self.t.schedules.values()
            if schedule.enabled
            and schedule.next_fire_at is not None
            and schedule.next_fire_at <= now
            and (workflow_ids is None or schedule.workflow_id in workflow_ids)
        ]
        due.sort(key=lambda schedule: (schedule.next_fire_at, schedule.id))
        return due[: max(limit, 0)]

    def apply_signal_schedule(self, effect: SignalScheduleEffect) -> None:
        """Apply one signal or schedule effect through the undo log."""
        t = self.t
        match effect:
            case InsertSignal(signal):
                self._insert(t.signals, signal.id, signal, f"signal {signal.id!r}")
            case ConsumeSignal(signal):
                current = t.signals.get(signal.id)
                if current is None or current.consumed_at is not None:
                    # Signals have no version: 1 stands for "still buffered" (all stores).
                    raise StaleVersionError("signal", signal.id, 1)
                consumed = evolve(current, consumed_at=signal.consumed_at, stage_id=signal.stage_id)
                self._set(t.signals, signal.id, consumed)
            case InsertSchedule(schedule):
                self._insert(t.schedules, schedule.id, schedule, f"schedule {schedule.id!r}")
            case UpdateSchedule(schedule, expected):
                self._replace(t.schedules, schedule, expected, "schedule")
            case DeleteSchedule(schedule_id):
                self._pop(t.schedules, schedule_id)
            case _:
                assert_never(effect)


class SignalScheduleQueries:
    """The signal and schedule queries of ``InMemoryStore`` (each its own read)."""

    _lock: threading.RLock
    _tables: SignalScheduleTables

    def get_signals(self, run_id: str) -> list[SignalRecord]:
        with self._lock:
            signals = list(self._tables.signals.values())
        return [signal for signal in signals if signal.workflow_run_id == run_id]

    def get_schedules(self) -> list[ScheduleRecord]:
        with self._lock:
            schedules = list(self._tables.schedules.values())
        return sorted(schedules, key=lambda schedule: schedule.id)
