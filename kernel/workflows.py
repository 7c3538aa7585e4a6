"""Workflows: stages composed into sequential and parallel execution groups (SPEC §4.3)."""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Generic, TypeVar, overload

from attrs import field, frozen
from returns.result import Failure, Result, Success

from kernel.convert import structure, to_json
from kernel.errors import DefinitionError
from kernel.limits import check_max_running_runs
from kernel.records import Json
from kernel.retry import DEFAULT_RETRY, Retry, check_retry
from kernel.stages import Stage
from kernel.workflow_checks import check_signals, check_types

In = TypeVar("In")
Out = TypeVar("Out")
Last = TypeVar("Last", covariant=True)  # so output= may be a base class (see _Build)
O2 = TypeVar("O2")

ParallelOutputs = dict[str, Any]
"""What a stage after a parallel group receives: ``{stage_id: output}``."""


@frozen(kw_only=True)
class Workflow(Generic[In, Out]):
    """An immutable, validated workflow. Build one with :class:`WorkflowBuilder`."""

    id: str
    name: str
    description: str
    input_type: type[In]
    output_type: type[Out]
    groups: tuple[tuple[Stage[Any, Any, Any], ...], ...]
    retry: Retry | None = None
    """The retry policy of stages that set none (SPEC §19)."""
    budget: Decimal | None = None
    """The default budget of its runs (``RunCreate(budget=...)`` overrides it)."""
    version: str = "1"
    """Which version of the workflow id this is (SPEC §16): a run keeps the version
    it was created with, and a worker only runs versions its registry holds."""
    max_running_runs: int | None = None
    """At most this many of its runs RUNNING at once; ``run.claimPending`` leaves the
    rest PENDING (SPEC §15). ``None``: no limit."""
    _by_id: dict[str, Stage[Any, Any, Any]] = field(init=False, eq=False, repr=False)
    _group_of: dict[str, int] = field(init=False, eq=False, repr=False)
    _number_of: dict[str, int] = field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        stages = [stage for group in self.groups for stage in group]
        object.__setattr__(self, "_by_id", {stage.id: stage for stage in stages})
        object.__setattr__(
            self,
            "_group_of",
            {stage.id: number for number, group in enumerate(self.groups, 1) for stage in group},
        )
        object.__setattr__(
            self, "_number_of", {stage.id: number for number, stage in enumerate(stages, 1)}
        )

    @property
    def stages(self) -> tuple[Stage[Any, Any, Any], ...]:
        """Every stage in stage-number order."""
        return tuple(stage for group in self.groups for stage in group)

    def stage(self, stage_id: str) -> Stage[Any, Any, Any] | None:
        """The stage with this id, or ``None``."""
        return self._by_id.get(stage_id)

    def retry_for(self, stage_id: str) -> Retry:
        """The retry policy of a stage: its own, else the workflow's, else the default."""
        stage = self._by_id.get(stage_id)
        own = stage.retry if stage is not None else None
        return own or self.retry or DEFAULT_RETRY

    def group_of(self, stage_id: str) -> int:
        """The 1-based execution group of a stage."""
        return self._group_of[stage_id]

    def stage_number(self, stage_id: str) -> int:
        """The 1-based position of a stage in the workflow."""
        return self._number_of[stage_id]

    def group(self, number: int) -> tuple[Stage[Any, Any, Any], ...]:
        """The stages of execution group ``number`` (1-based)."""
        return self.groups[number - 1]

    def signal_stages(self, signal: str) -> tuple[Stage[Any, Any, Any], ...]:
        """The signal stages waiting for ``signal``, in stage-number order."""
        return tuple(stage for stage in self.stages if stage.signal == signal)

    @property
    def signals(self) -> tuple[str, ...]:
        """The names of the signals its signal stages wait for, in stage order."""
        return tuple(dict.fromkeys(s.signal for s in self.stages if s.signal is not None))

    @property
    def output_types(self) -> dict[str, type[Any]]:
        """Each stage's output type by stage id (for ``ctx.require`` by id)."""
        return {stage.id: stage.output_type for stage in self.stages}

    def validate_config(
        self, config: Mapping[str, Any] | None
    ) -> Result[dict[str, dict[str, Json]], list[str]]:
        """Merge each stage's defaults under ``config`` and validate the result.

        Returns the complete config map in JSON form, or ``path: problem`` lines.
        """
        if config is not None and not isinstance(config, Mapping):
            return Failure([f"config: expected a mapping of stage id to values, got {config!r}"])
        given = dict(config or {})
        problems = [
            f"config: unknown stage {key!r} (workflow {self.id!r} has "
            f"{', '.join(repr(s) for s in self._by_id)})"
            for key in given
            if key not in self._by_id
        ]
        merged: dict[str, dict[str, Json]] = {}
        for stage in self.stages:
            values = given.get(stage.id, {})
            if not isinstance(values, Mapping):
                problems.append(f"config.{stage.id}: expected a mapping, got {values!r}")
                continue
            candidate = {**stage.default_config(), **values}
            match structure(candidate, stage.config_type, f"config.{stage.id}"):
                case Success(typed):
                    merged[stage.id] = to_json(typed)
                case Failure(lines):
                    problems.extend(lines)
        if problems:
            return Failure(problems)
        return Success(merged)


class _Build:
    """``WorkflowBuilder.build``: a plain method at run time, which mypy lets a builder
    call only if its ``output=`` is the last group's output or a base class of it (a
    descriptor's argument is type-checked where ``self`` is not); else ``.build()`` is
    an error: ``Cannot infer value of type parameter "Out" of "__get__" of "_Build"``."""

    def __init__(self, build: Callable[[Any], Workflow[Any, Any]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, builder: None, owner: type[Any] | None = None) -> _Build: ...

    @overload
    def __get__(
        self, builder: WorkflowBuilder[In, Out, Out], owner: type[Any] | None = None
    ) -> Callable[[], Workflow[In, Out]]: ...

    def __get__(self, builder: object, owner: type[Any] | None = None) -> Any:
        return self if builder is None else types.MethodType(self._build, builder)


class WorkflowBuilder(Generic[In, Out, Last]):
    """Compose stages into a :class:`Workflow`.

    ``pipe`` adds a group of one stage, ``parallel`` a group of several.
    With mypy, piping a stage whose input type does not accept the previous
    output is a type error.

    >>> import attrs
    >>> from kernel.stages import define_stage
    >>> @attrs.frozen
    ... class Num:
    ...     n: int
    >>> @attrs.frozen
    ... class NoConfig:
    ...     pass
    >>> double = define_stage(id="double", name="Double", input=Num, output=Num,
    ...                       config=NoConfig, execute=lambda ctx: Num(ctx.input.n * 2))
    >>> builder = WorkflowBuilder("doubler", "Doubler", "doubles", input=Num, output=Num)
    >>> wf = builder.pipe(double).build()
    >>> [stage.id for stage in wf.stages]
    ['double']
    """

    def __init__(
        self: WorkflowBuilder[In, Out, In],
        id: str,
        name: str,
        description: str = "",
        *,
        input: type[In],
        output: type[Out],
        retry: Retry | None = None,
        budget: Decimal | None = None,
        version: str = "1",
        max_running_runs: int | None = None,
        _groups: tuple[tuple[Stage[Any, Any, Any], ...], ...] = (),
    ) -> None:
        self._id = id
        self._name = name
        self._description = description
        self._input = input
        self._output = output
        self._groups = _groups
        self._retry = check_retry(f"workflow {id!r}", retry)
        if budget is not None and (
            not isinstance(budget, Decimal) or not budget.is_finite() or budget <= 0
        ):
            raise DefinitionError(
                f"workflow {id!r}: budget: expected a Decimal > 0, got {budget!r}"
            )
        self._budget = budget
        if not isinstance(version, str) or not version.strip():
            raise DefinitionError(
                f"workflow {id!r}: version: expected a non-empty string, got {version!r}"
            )
        self._version = version
        self._max_running_runs = check_max_running_runs(f"workflow {id!r}", max_running_runs)

    def _with(self, group: tuple[Stage[Any, Any, Any], ...]) -> Any:
        builder: WorkflowBuilder[Any, Any, Any] = WorkflowBuilder(
            self._id,
            self._name,
            self._description,
            input=self._input,
            output=self._output,
            retry=self._retry,
            budget=self._budget,
            version=self._version,
            max_running_runs=self._max_running_runs,
            _groups=(*self._groups, group),
        )
        return builder

    @overload
    def pipe(self, stage: Stage[Last, O2, Any]) -> WorkflowBuilder[In, Out, O2]: ...

    @overload
    def pipe(self, stage: Stage[None, O2, Any]) -> WorkflowBuilder[In, Out, O2]: ...

    def pipe(self, stage: Stage[Any, Any, Any]) -> WorkflowBuilder[In, Out, Any]:
        """Add an execution group of one stage."""
        if not isinstance(stage, Stage):
            raise DefinitionError(f"pipe: expected a stage, got {stage!r}")
        built: WorkflowBuilder[In, Out, Any] = self._with((stage,))
        return built

    def parallel(
        self, stages: Sequence[Stage[None, Any, Any] | Stage[Last, Any, Any]]
    ) -> WorkflowBuilder[In, Out, ParallelOutputs]:
        """Add one execution group whose stages run concurrently."""
        group = tuple(stages)
        if not group:
            raise DefinitionError(f"workflow {self._id!r}: parallel() needs at least one stage")
        for stage in group:
            if not isinstance(stage, Stage):
                raise DefinitionError(f"parallel: expected stages, got {stage!r}")
        built: WorkflowBuilder[In, Out, ParallelOutputs] = self._with(group)
        return built

    @_Build
    def build(self) -> Workflow[In, Out]:
        """Validate and freeze the workflow.

        Raises:
            DefinitionError: empty workflow, duplicate stage ids, a declared
                dependency that is not an earlier stage, a stage whose input class
                is not what the group before it outputs (or a base class of it), or
                an ``output=`` the last group does not give (the message names them).
        """
        if not self._groups:
            raise DefinitionError(f"workflow {self._id!r} has no stages")
        seen: set[str] = set()
        for group in self._groups:
            group_ids = {stage.id for stage in group}
            for stage in group:
                if stage.id in seen:
                    raise DefinitionError(f"workflow {self._id!r}: duplicate stage id {stage.id!r}")
                for dependency in stage.dependencies:
                    if dependency not in seen:
                        where = (
                            "in the same parallel group"
                            if dependency in group_ids
                            else ("not an earlier stage")
                        )
                        raise DefinitionError(
                            f"workflow {self._id!r}: stage {stage.id!r} depends on "
                            f"{dependency!r}, which is {where}"
                        )
            ids = [stage.id for stage in group]
            duplicates = {stage_id for stage_id in ids if ids.count(stage_id) > 1}
            if duplicates:
                raise DefinitionError(
                    f"workflow {self._id!r}: duplicate stage id {sorted(duplicates)[0]!r}"
                )
            seen |= group_ids
        check_types(self._id, self._input, self._output, self._groups)
        check_signals(self._id, self._groups)
        return Workflow(
            id=self._id,
            name=self._name,
            description=self._description,
            input_type=self._input,
            output_type=self._output,
            groups=self._groups,
            retry=self._retry,
            budget=self._budget,
            version=self._version,
            max_running_runs=self._max_running_runs,
        )


class Registry:
    """A :class:`~kernel.ports.WorkflowRegistry` over a fixed set of workflows.

    It may hold several versions of one workflow id (SPEC §16); the newest is the
    last registered.

    >>> Registry([]).get_workflow("missing") is None
    True
    """

    def __init__(self, workflows: Sequence[Workflow[Any, Any]] = ()) -> None:
        self._versions: dict[tuple[str, str], Workflow[Any, Any]] = {}
        self._newest: dict[str, Workflow[Any, Any]] = {}
        self._ids: frozenset[str] = frozenset()
        self._pairs: frozenset[tuple[str, str]] = frozenset()
        for workflow in workflows:
            self.register(workflow)

    def register(self, workflow: Workflow[Any, Any]) -> None:
        """Add a workflow version, which becomes its id's newest; registering the same
        (id, version) twice is refused (the same object again changes nothing)."""
        if not isinstance(workflow, Workflow):
            raise DefinitionError(f"registry: expected a Workflow, got {workflow!r}")
        pair = (workflow.id, workflow.version)
        existing = self._versions.get(pair)
        if existing is workflow:
            return
        if existing is not None:
            raise DefinitionError(
                f"registry: workflow {workflow.id!r} version {workflow.version!r} "
                "is registered twice"
            )
        self._versions[pair] = workflow
        self._newest[workflow.id] = workflow
        self._ids = frozenset(self._newest)
        self._pairs = frozenset(self._versions)

    def get_workflow(
        self, workflow_id: str, version: str | None = None
    ) -> Workflow[Any, Any] | None:
        """The workflow registered under ``workflow_id`` and ``version``; without a
        version, its newest (the last registered). ``None`` if there is none."""
        if version is None:
            return self._newest.get(workflow_id)
        return self._versions.get((workflow_id, version))

    def workflow_ids(self) -> frozenset[str]:
        """The ids of every registered workflow (one set, rebuilt only by :meth:`register`).

        >>> sorted(Registry([]).workflow_ids())
        []
        """
        return self._ids

    def workflow_versions(self) -> frozenset[tuple[str, str]]:
        """Every registered ``(workflow id, version)`` pair (one set, rebuilt only by
        :meth:`register`).

        >>> sorted(Registry([]).workflow_versions())
        []
        """
        return self._pairs

    def versions_of(self, workflow_id: str) -> tuple[str, ...]:
        """The registered versions of ``workflow_id``, oldest registration first."""
        return tuple(version for (wid, version) in self._versions if wid == workflow_id)

    @property
    def workflows(self) -> tuple[Workflow[Any, Any], ...]:
        """Every registered workflow version, in registration order."""
        return tuple(self._versions.values())
