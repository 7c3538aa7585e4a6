"""Hosts: what runs the kernel's commands over time (SPEC §8).

* :class:`WorkerHost` — a long-running worker: orchestration ticks and job slots.
* :class:`ServerlessHost` — bounded calls for queue- and cron-driven platforms.

Both are thin drivers around one pure scheduling step function,
:func:`adapters.hosts.schedule.step`.
"""

from adapters.hosts.serverless import JobReport, ProcessJobsResult, ServerlessHost
from adapters.hosts.tick import TickReport
from adapters.hosts.worker import WorkerHost, WorkerStats

__all__ = [
    "JobReport",
    "ProcessJobsResult",
    "ServerlessHost",
    "TickReport",
    "WorkerHost",
    "WorkerStats",
]
