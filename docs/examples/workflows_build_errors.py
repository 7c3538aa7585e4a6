"""What build() and define_stage() refuse, and the messages they give."""

from collections.abc import Callable
from typing import Any

import attrs

from kernel import DefinitionError, StageContext, WorkflowBuilder, define_stage


@attrs.frozen
class Text:
    text: str


@attrs.frozen
class NoConfig:
    pass


@attrs.frozen
class NeedsValue:
    threshold: float  # no default


def echo(ctx: StageContext[Text, NoConfig]) -> Text:
    return ctx.input


a = define_stage(id="a", name="A", input=Text, output=Text, config=NoConfig, execute=echo)
b = define_stage(id="b", name="B", input=Text, output=Text, config=NoConfig, execute=echo)
needs_a = define_stage(
    id="c", name="C", input=Text, output=Text, config=NoConfig, execute=echo, dependencies=["a"]
)


def builder() -> WorkflowBuilder[Text, Text, Text]:
    return WorkflowBuilder("docs", "Docs", input=Text, output=Text)


def fan_out() -> WorkflowBuilder[Text, dict[str, Any], Text]:
    # Ends with a parallel group, so the output is {stage_id: output}.
    return WorkflowBuilder("docs", "Docs", input=Text, output=dict[str, Any])


def define(stage_id: str, config: type[Any]) -> object:
    return define_stage(id=stage_id, name="X", input=Text, output=Text, config=config, execute=echo)


def error_of(build: Callable[[], object]) -> str:
    try:
        build()
    except DefinitionError as error:
        return str(error)
    raise AssertionError("expected a DefinitionError")


def main() -> None:
    assert error_of(lambda: builder().build()) == "workflow 'docs' has no stages"
    assert error_of(lambda: builder().pipe(a).pipe(a).build()) == (
        "workflow 'docs': duplicate stage id 'a'"
    )
    assert error_of(lambda: builder().pipe(needs_a).pipe(a).build()) == (
        "workflow 'docs': stage 'c' depends on 'a', which is not an earlier stage"
    )
    assert error_of(lambda: fan_out().parallel([a, needs_a]).build()) == (
        "workflow 'docs': stage 'c' depends on 'a', which is in the same parallel group"
    )
    assert error_of(lambda: builder().pipe(a).parallel([])) == (
        "workflow 'docs': parallel() needs at least one stage"
    )
    assert fan_out().pipe(a).pipe(needs_a).parallel([b]).build().id == "docs"  # all fine

    # define_stage checks the definition itself.
    assert error_of(lambda: define("", NoConfig)) == "stage id: expected a non-empty string, got ''"
    assert error_of(lambda: define("x", dict)) == (
        "stage 'x': config must be an attrs class, got <class 'dict'>"
    )
    assert error_of(lambda: define("x", NeedsValue)).startswith(
        "stage 'x': every config field needs a default"
    )


if __name__ == "__main__":
    main()
