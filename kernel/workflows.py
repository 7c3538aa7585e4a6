"""Workflows: stages composed into sequential and parallel execution groups (SPEC §4.3)."""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar, get_origin, is_typeddict, overload

from attrs import field, frozen
from returns.result import Failure, Result, Success

from kernel.convert import structure, to_json
from kernel.errors import DefinitionError
from kernel.records import Json
from kernel.retry import DEFAULT_RETRY, Retry, check_retry
from kernel.stages import Stage

In = TypeVar("In")
Out = TypeVar("Out")
Last = TypeVar("Last", covariant=True)  # so output= may be a base class (see _Build)
O2 = TypeVar("O2")

ParallelOutputs = dict[str, Any]
"""What a stage after a parallel group receives: ``{stage_id: output}``."""


# -- the type checks of build() (SPEC §19) ----------------------------------------


def _as_class(annotation: object) -> type | None:
    """The class an annotation stands for (``dict[str, Any]``: ``dict``), or ``None``
    when run time cannot check it (``Any``, unions, ``Annotated``, ...).

    >>> _as_class(dict[str, Any]), _as_class(Any), _as_class(int | None)
    (<class 'dict'>, None, None)
    """
    if annotation is Any:
        return None
    origin = get_origin(annotation)
    if origin is not None:
        if origin is types.UnionType or origin is Annotated:
            return None
        annotation = origin
    return annotation if isinstance(annotation, type) else None


def _accepts(expected: object, given: object) -> bool:
    """Whether ``given`` is ``expected`` or a subclass of it (the rule mypy applies to
    ``pipe``). What run time cannot check (``Any``, unions, protocols) is accepted and
    left to mypy; a ``TypedDict`` is structural, so any mapping may fit it.

    >>> _accepts(Mapping[str, Any], dict), _accepts(dict, object), _accepts(Any, int)
    (True, False, True)
    """
    wanted, have = _as_class(expected), _as_class(given)
    if wanted is None or have is None or wanted is have:
        return True
    if is_typeddict(wanted):  # structural: any mapping may fit, as far as run time can tell
        return issubclass(have, Mapping)
    try:
        return issubclass(have, wanted)
    except TypeError:  # protocols refuse class checks
        return True


def _name(annotation: object, beside: object) -> str:
    """A short name for a type; with its module when ``beside`` has the same short name."""
    if not isinstance(annotation, type) or get_origin(annotation) is not None:
        return repr(annotation)
    short: str = annotation.__qualname__
    if isinstance(beside, type) and beside is not annotation and beside.__qualname__ == short:
        return f"{annotation.__module__}.{short}"
    return short


def _fits(expected: object, group: tuple[Stage[Any, Any, Any], ...]) -> bool:
    """Whether what ``group`` gives (one stage's output, or ``{stage_id: output}``) fits
    ``expected``. A one-stage group may come from ``parallel([...])``, which mypy
    types as the mapping: either fits."""
    if len(group) == 1 and _accepts(expected, group[0].output_type):
        return True
    return _accepts(expected, dict)


def _source(
    group: tuple[Stage[Any, Any, Any], ...], where: str, expected: object
) -> tuple[object, str]:
    """What ``group`` gives, and how a message says it."""
    if len(group) > 1:
        ids = ", ".join(repr(stage.id) for stage in group)
        return dict, f"the {where} parallel group ({ids}) gives {{stage_id: output}}"
    given = group[0].output_type
    return given, f"the {where} stage {group[0].id!r} outputs {_name(given, expected)}"


def _check_types(
    workflow_id: str,
    input: object,
    output: object,
    groups: tuple[tuple[Stage[Any, Any, Any], ...], ...],
) -> None:
    """Refuse, naming both classes, a stage that cannot take what the group before it
    (or the run's input) gives, and an ``output=`` the last group does not give."""

    def refuse(what: str, expected: object, given: object, source: str) -> DefinitionError:
        return DefinitionError(
            f"workflow {workflow_id!r}: {what} {_name(expected, given)}, but {source} "
            f"({_name(given, expected)} is not {_name(expected, given)} or a subclass of it)"
        )

    for number, group in enumerate(groups):
        for stage in group:
            takes, expected = f"stage {stage.id!r} takes", stage.input_type
            if expected is None:
                continue
            if number == 0 and not _accepts(expected, input):
                source = f"the workflow's input is {_name(input, expected)}"
                raise refuse(takes, expected, input, source)
            if number > 0 and not _fits(expected, groups[number - 1]):
                raise refuse(takes, expected, *_source(groups[number - 1], "previous", expected))
    if not _fits(output, groups[-1]):
        raise refuse("output= is", output, *_source(groups[-1], "last", output))


def _check_signals(workflow_id: str, groups: tuple[tuple[Stage[Any, Any, Any], ...], ...]) -> None:
    """Refuse stages that wait for one signal name with different output types: a
    signal's payload is checked against one type when it is sent (SPEC §16.1)."""
    first: dict[str, Stage[Any, Any, Any]] = {}
    for stage in (stage for group in groups for stage in group):
        if stage.signal is None:
            continue
        earlier = first.setdefault(stage.signal, stage)
        if earlier.output_type is not stage.output_type:
            raise DefinitionError(
                f"workflow {workflow_id!r}: stages {earlier.id!r} and {stage.id!r} both wait "
                f"for signal {stage.signal!r} but output "
                f"{_name(earlier.output_type, stage.output_type)} and "
                f"{_name(stage.output_type, earlier.output_type)}; stages sharing a signal "
                "must share its output type"
            )


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

    def _with(self, group: tuple[Stage[Any, Any, Any], ...]) -> Any:
        builder: WorkflowBuilder[Any, Any, Any] = WorkflowBuilder(
            self._id,
            self._name,
            self._description,
            input=self._input,
            output=self._output,
            retry=self._retry,
            budget=self._budget,
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
        _check_types(self._id, self._input, self._output, self._groups)
        _check_signals(self._id, self._groups)
        return Workflow(
            id=self._id,
            name=self._name,
            description=self._description,
            input_type=self._input,
            output_type=self._output,
            groups=self._groups,
            retry=self._retry,
            budget=self._budget,
        )


class Registry:
    """A :class:`~kernel.ports.WorkflowRegistry` over a fixed set of workflows.

    >>> Registry([]).get_workflow("missing") is None
    True
    """

    def __init__(self, workflows: Sequence[Workflow[Any, Any]] = ()) -> None:
        self._workflows: dict[str, Workflow[Any, Any]] = {}
        self._ids: frozenset[str] = frozenset()
        for workflow in workflows:
            self.register(workflow)

    def register(self, workflow: Workflow[Any, Any]) -> None:
        """Add a workflow; a second workflow with the same id is refused."""
        if not isinstance(workflow, Workflow):
            raise DefinitionError(f"registry: expected a Workflow, got {workflow!r}")
        if workflow.id in self._workflows and self._workflows[workflow.id] is not workflow:
            raise DefinitionError(f"registry: workflow id {workflow.id!r} is registered twice")
        self._workflows[workflow.id] = workflow
        self._ids = frozenset(self._workflows)

    def get_workflow(self, workflow_id: str) -> Workflow[Any, Any] | None:
        """The workflow registered under ``workflow_id``, or ``None``."""
        return self._workflows.get(workflow_id)

    def workflow_ids(self) -> frozenset[str]:
        """The ids of every registered workflow (one set, rebuilt only by :meth:`register`).

        >>> sorted(Registry([]).workflow_ids())
        []
        """
        return self._ids

    @property
    def workflows(self) -> tuple[Workflow[Any, Any], ...]:
        """Every registered workflow."""
        return tuple(self._workflows.values())
