"""``plugin.replayDLQ``: give dead-lettered events another chance (SPEC §5.10)."""

from __future__ import annotations

from collections.abc import Sequence

from returns.result import Result, Success

from kernel.commands import PluginReplayDLQResult
from kernel.copying import evolve
from kernel.effects import Decision, UpdateOutbox
from kernel.errors import KernelError
from kernel.records import OutboxEvent


def decide(
    dead: Sequence[OutboxEvent],
) -> Result[Decision[PluginReplayDLQResult], KernelError]:
    """Reset dead-lettered events so the next flush tries them again."""
    effects = tuple(UpdateOutbox(evolve(event, retry_count=0, dlq_at=None)) for event in dead)
    return Success(Decision(PluginReplayDLQResult(replayed=len(dead)), effects))
