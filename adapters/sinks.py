"""Event sinks that need no configuration."""

from __future__ import annotations

import logging

from kernel.events import Event, StageFailed

logger = logging.getLogger("workflow_kernel.events")


class LoggingEventSink:
    """Logs each published event at INFO on ``workflow_kernel.events``; a
    ``stage:failed`` at WARNING with its error and, once, its traceback."""

    max_retries = 3

    def emit(self, event: Event) -> None:
        if isinstance(event, StageFailed):
            logger.warning(
                "%s run=%s stage=%s attempt=%d will_retry=%s: %s%s",
                event.type,
                event.workflow_run_id,
                event.stage_id,
                event.attempt,
                event.will_retry,
                event.error,
                "\n" + event.traceback.rstrip("\n") if event.traceback else "",
                extra={"event_type": event.type, "workflow_run_id": event.workflow_run_id},
            )
            return
        logger.info(
            "%s run=%s",
            event.type,
            event.workflow_run_id,
            extra={"event_type": event.type, "workflow_run_id": event.workflow_run_id},
        )
