"""Structured host logging: every record names the worker, and the run and stage it is about.

Records from hosts go to the ``workflow_kernel.hosts`` logger and always
carry the attributes ``worker_id``, ``workflow_run_id``, ``stage_id`` and
``job_id`` (``None`` when a record is not about one), so a formatter or a
JSON handler can rely on them.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

LOGGER_NAME = "workflow_kernel.hosts"

CONTEXT_FIELDS = ("worker_id", "workflow_run_id", "stage_id", "job_id")
"""The attributes every host log record carries."""


class HostLog(logging.LoggerAdapter[logging.Logger]):
    """A logger adapter that adds the worker id, and merges per-call ``extra`` over it.

    ``logging.LoggerAdapter`` before Python 3.13 replaces a call's ``extra``
    with the adapter's; this one merges them, so
    ``log.info("...", extra={"workflow_run_id": run_id})`` keeps the worker id.
    """

    def __init__(self, worker_id: str, logger: logging.Logger | None = None) -> None:
        super().__init__(logger or logging.getLogger(LOGGER_NAME), {"worker_id": worker_id})

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        context: dict[str, Any] = dict.fromkeys(CONTEXT_FIELDS)
        context.update(self.extra or {})
        context.update(kwargs.get("extra") or {})
        kwargs["extra"] = context
        return msg, kwargs
