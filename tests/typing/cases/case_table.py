"""A command table entry must end in its command's result type: mypy checks ``entry``."""
# Expectation markers must stay on the line mypy reports, so this file is not reformatted.
# fmt: off
# ruff: noqa: E501

from typing import reveal_type

from kernel.commands import (
    LeaseRelease,
    LeaseReleaseResult,
    RunCancel,
    RunCancelResult,
    RunCreate,
    RunCreateResult,
)
from kernel.decisions import run_cancel
from kernel.shell.steps import Phase, entry, single
from testing import create_test_kernel


def cancel(cmd: RunCancel) -> Phase[RunCancelResult]:
    return single(
        lambda reads: run_cancel.Cancellable(reads.tx.get_run(cmd.workflow_run_id), [], []),
        lambda state, env: run_cancel.decide(cmd, state, env),
    )


ok = entry(RunCancel, RunCancelResult, cancel)

# The handler of RunCancel filed under RunCreate: its phases end in the wrong result.
wrong_command = entry(RunCreate, RunCreateResult, cancel)  # E: Argument 3 to "entry" has incompatible type

# A result class that is not the command's own.
wrong_result = entry(RunCancel, RunCreateResult, cancel)  # E: Argument 3 to "entry" has incompatible type


# Commands added by the shell redesign are typed through dispatch like the rest.
tk = create_test_kernel()
reveal_type(tk.dispatch(LeaseRelease(job_ids=("job-1",), worker_id="w")))  # N: Revealed type is "kernel.commands.LeaseReleaseResult"
released: LeaseReleaseResult = tk.dispatch(LeaseRelease(job_ids=("job-1",), worker_id="w"))
