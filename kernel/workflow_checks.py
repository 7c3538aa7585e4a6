"""The checks ``WorkflowBuilder.build`` makes on stage types and signals (SPEC §19)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any, get_origin, is_typeddict

from kernel.errors import DefinitionError
from kernel.stages import Stage


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


def check_types(
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


def check_signals(workflow_id: str, groups: tuple[tuple[Stage[Any, Any, Any], ...], ...]) -> None:
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
