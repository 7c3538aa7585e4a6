"""Event sinks that need no configuration."""

from __future__ import annotations

import logging

from kernel.events import Event

logger = logging.getLogger("workflow_kernel.events")


class LoggingEventSink:
    """Logs each published event at INFO on ``workflow_kernel.events``."""

    max_retries = 3

    def emit(self, event: Event) -> None:
        logger.info(
            "%s run=%s",
            event.type,
            event.workflow_run_id,
            extra={"event_type": event.type, "workflow_run_id": event.workflow_run_id},
        )
