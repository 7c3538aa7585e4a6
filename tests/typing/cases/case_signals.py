"""A signal stage is typed by its output (``ctx.require`` sees it), and the signal and
schedule commands dispatch to their own results (SPEC §13, §14)."""
# Expectation markers must stay on the line mypy reports, so this file is not reformatted.
# fmt: off
# ruff: noqa: E501

from datetime import timedelta
from typing import reveal_type

import attrs

from kernel import (
    RunSignal,
    Schedule,
    ScheduleTick,
    ScheduleUpsert,
    StageContext,
    define_signal_stage,
)
from testing import create_test_kernel


@attrs.frozen
class ApprovalDecision:
    approved: bool
    by: str
    comment: str = ""


approve = define_signal_stage(id="approve", name="Approve", signal="approval", output=ApprovalDecision, timeout=timedelta(hours=48))


def publish(ctx: StageContext[None, object]) -> None:
    reveal_type(ctx.require(approve))  # N: Revealed type is "case_signals.ApprovalDecision"
    approved: str = ctx.require(approve).approved  # E: Incompatible types in assignment
    print(approved)


tk = create_test_kernel()
reveal_type(tk.dispatch(RunSignal("run-1", "approval", {"approved": True, "by": "ana"})))  # N: Revealed type is "kernel.commands.RunSignalResult"
reveal_type(tk.dispatch(ScheduleUpsert(Schedule("nightly", "report", cron="0 3 * * *"))))  # N: Revealed type is "kernel.commands.ScheduleUpsertResult"
reveal_type(tk.dispatch(ScheduleTick()).created)  # N: Revealed type is "list[str]"
define_signal_stage(id="late", name="Late", signal="approval", output=ApprovalDecision, timeout=30)  # E: Argument "timeout" to "define_signal_stage" has incompatible type "int"
