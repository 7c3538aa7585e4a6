"""The errors a caller can cause (SPEC §6.5).

Every error carries a stable ``code`` and a message that names the field,
stage or id involved. ``KernelError`` itself is abstract: raise a subclass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class KernelError(Exception):
    """Base of every error the kernel reports to its callers."""

    code: ClassVar[str] = "KERNEL_ERROR"

    def __init__(self, message: str) -> None:
        if type(self) is KernelError:
            raise TypeError("KernelError is abstract: raise one of its subclasses")
        super().__init__(message)
        self.message = message

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and str(other) == str(self)

    def __hash__(self) -> int:
        return hash((type(self), str(self)))


def named_version(version: str | None, *, asked: bool = False) -> str | None:
    """The version an error message names: one the caller asked for, or any but the
    default ``"1"`` (so messages about unversioned workflows stay as they were).

    >>> named_version("1"), named_version("2"), named_version("1", asked=True)
    (None, '2', '1')
    """
    return version if asked or version != "1" else None


class WorkflowNotFoundError(KernelError, LookupError):
    """A command names a workflow that is not registered."""

    code = "WORKFLOW_NOT_FOUND"

    def __init__(self, workflow_id: str, version: str | None = None) -> None:
        if version is None:
            super().__init__(f"workflow {workflow_id!r} is not registered")
        else:
            super().__init__(f"workflow {workflow_id!r} version {version!r} is not registered")
        self.workflow_id = workflow_id
        self.version = version


class InvalidInputError(KernelError, ValueError):
    """Input that does not structure into the workflow's or stage's input type."""

    code = "INVALID_INPUT"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid input: " + "; ".join(self.problems))


class InvalidConfigError(KernelError, ValueError):
    """Run config with an unknown stage, unknown key or a value of the wrong type."""

    code = "INVALID_CONFIG"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid config: " + "; ".join(self.problems))


class RunNotFoundError(KernelError, LookupError):
    """A command names a run that does not exist."""

    code = "RUN_NOT_FOUND"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"workflow run {run_id!r} does not exist")
        self.run_id = run_id


class StageNotFoundError(KernelError, LookupError):
    """A command names a stage that its workflow does not have."""

    code = "STAGE_NOT_FOUND"

    def __init__(self, stage_id: str, workflow_id: str, version: str | None = None) -> None:
        where = f"workflow {workflow_id!r}" + (f" version {version!r}" if version else "")
        super().__init__(f"stage {stage_id!r} is not part of {where}")
        self.stage_id = stage_id
        self.workflow_id = workflow_id
        self.version = version


class InvalidStateError(KernelError, RuntimeError):
    """A command that is not allowed in the current state of its run or stage."""

    code = "INVALID_STATE"


class IdempotencyInProgressError(KernelError, RuntimeError):
    """The same idempotency key is held by a command that has not finished yet."""

    code = "IDEMPOTENCY_IN_PROGRESS"

    def __init__(self, key: str, command_type: str) -> None:
        super().__init__(
            f"idempotency key {key!r} for {command_type} is held by a command still in progress"
        )
        self.key = key
        self.command_type = command_type


class IdempotencyConflictError(KernelError, ValueError):
    """The same idempotency key was used before with a different payload."""

    code = "IDEMPOTENCY_CONFLICT"

    def __init__(self, key: str, command_type: str) -> None:
        super().__init__(
            f"idempotency key {key!r} for {command_type} was used with a different payload"
        )
        self.key = key
        self.command_type = command_type


class StaleVersionError(KernelError, RuntimeError):
    """An update stated a version that is no longer current (optimistic concurrency)."""

    code = "STALE_VERSION"

    def __init__(self, entity: str, entity_id: str, expected: int) -> None:
        super().__init__(
            f"{entity} {entity_id!r} changed concurrently: expected version {expected}"
        )
        self.entity = entity
        self.entity_id = entity_id
        self.expected = expected


class StoreError(KernelError, RuntimeError):
    """A store could not do its work (database unreachable, corrupt, locked too long)."""

    code = "STORE_ERROR"


class DefinitionError(KernelError, ValueError):
    """A stage or workflow definition that cannot be built (SPEC §4.3)."""

    code = "INVALID_DEFINITION"


class StageOutputMissingError(KernelError, LookupError):
    """``ctx.require`` asked for the output of a stage that has not completed."""

    code = "STAGE_OUTPUT_MISSING"

    def __init__(self, stage_id: str) -> None:
        super().__init__(
            f"stage {stage_id!r} has no output yet: it is not an earlier, completed stage "
            "of this run"
        )
        self.stage_id = stage_id
