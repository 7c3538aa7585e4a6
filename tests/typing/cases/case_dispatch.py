"""``dispatch(cmd)`` is typed per command: each command class is generic in its result (SPEC §5)."""
# Expectation markers must stay on the line mypy reports, so this file is not reformatted.
# fmt: off
# ruff: noqa: E501

from typing import reveal_type

from adapters import create_kernel
from adapters.memory import InMemoryStore
from kernel import RunCancel, RunCreate
from testing import create_test_kernel

kernel = create_kernel(store=InMemoryStore())

reveal_type(kernel.dispatch(RunCreate(workflow_id="wf", input={})))  # N: Revealed type is "kernel.commands.RunCreateResult"
reveal_type(kernel.dispatch(RunCancel(workflow_run_id="run-1")))  # N: Revealed type is "kernel.commands.RunCancelResult"

# The test kernel's dispatch is typed the same way.
test_kernel = create_test_kernel()
reveal_type(test_kernel.dispatch(RunCreate(workflow_id="wf", input={})))  # N: Revealed type is "kernel.commands.RunCreateResult"

# So a result's fields are checked: RunCreateResult has no `cancelled`.
created = kernel.dispatch(RunCreate(workflow_id="wf", input={}))
print(created.workflow_run_id, created.status)
print(created.cancelled)  # E: "RunCreateResult" has no attribute "cancelled"
