"""The record codecs of the SQLite store: one per table holding records."""

from __future__ import annotations

from adapters.sqlite.codec import RecordCodec
from kernel.records import (
    IdempotencyRecord,
    Job,
    LogEntry,
    OutboxEvent,
    SignalRecord,
    WorkflowRun,
    WorkflowStage,
)
from kernel.schedules import ScheduleRecord

RUNS = RecordCodec.of(WorkflowRun)
STAGES = RecordCodec.of(WorkflowStage)
JOBS = RecordCodec.of(Job)
OUTBOX = RecordCodec.of(OutboxEvent)
IDEMPOTENCY = RecordCodec.of(IdempotencyRecord)
LOGS = RecordCodec.of(LogEntry)
SIGNALS = RecordCodec.of(SignalRecord)
SCHEDULES = RecordCodec.of(ScheduleRecord)
