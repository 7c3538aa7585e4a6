"""The services a stage context uses, backed by the store's blob and log methods."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kernel.convert import to_json
from kernel.decisions.lifecycle import output_key
from kernel.ports import Clock, IdGenerator, Store
from kernel.records import Json, LogEntry
from kernel.status import LogLevel


class StoreStageServices:
    """Logs, stored outputs and ``ctx.storage`` for one stage attempt.

    Each call is its own short transaction: user code never runs inside one.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        workflow_run_id: str,
        stage_record_id: str | None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._run_id = workflow_run_id
        self._stage_record_id = stage_record_id

    def log(self, level: LogLevel, message: str, meta: Mapping[str, Any] | None) -> None:
        self._store.append_log(
            LogEntry(
                id=self._ids.new_id(),
                workflow_run_id=self._run_id,
                stage_record_id=self._stage_record_id,
                level=level,
                message=message,
                metadata=to_json(dict(meta or {})),
                created_at=self._clock.now(),
            )
        )

    def load_output(self, stage_id: str) -> tuple[bool, Json]:
        return self._store.get_blob(output_key(self._run_id, stage_id))

    def save_blob(self, key: str, value: Json) -> None:
        self._store.put_blob(key, value)

    def load_blob(self, key: str) -> tuple[bool, Json]:
        return self._store.get_blob(key)

    def delete_blob(self, key: str) -> None:
        self._store.delete_blob(key)

    def now(self) -> datetime:
        return self._clock.now()
