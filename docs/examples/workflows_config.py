"""Run config: per-stage values merged over defaults and validated at run.create."""

import attrs

from kernel import (
    InvalidConfigError,
    InvalidInputError,
    RunCreate,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from testing import create_test_kernel


# --8<-- [start:workflow]
@attrs.frozen
class Image:
    path: str
    width: int


@attrs.frozen
class Thumbnail:
    path: str
    width: int


@attrs.frozen
class ResizeConfig:
    width: int = 200
    format: str = "webp"
    quality: float = 0.8


def resize(ctx: StageContext[Image, ResizeConfig]) -> Thumbnail:
    config = ctx.config  # a ResizeConfig: the run's values merged over the defaults
    stem = ctx.input.path.rsplit(".", 1)[0]
    return Thumbnail(path=f"{stem}-{config.width}.{config.format}", width=config.width)


resize_stage = define_stage(
    id="resize", name="Resize", input=Image, output=Thumbnail, config=ResizeConfig, execute=resize
)
thumbnails = (
    WorkflowBuilder("thumbnails", "Thumbnails", input=Image, output=Thumbnail)
    .pipe(resize_stage)
    .build()
)
# --8<-- [end:workflow]


# --8<-- [start:merge]
def run_with_config() -> None:
    test = create_test_kernel(thumbnails)
    created = test.dispatch(
        RunCreate(
            workflow_id="thumbnails",
            input={"path": "cat.png", "width": 4000},
            config={"resize": {"width": 320}},
        )
    )
    run = test.store.get_run(created.workflow_run_id)
    assert run is not None
    # The run stores the complete, validated config of every stage.
    assert run.config == {"resize": {"width": 320, "format": "webp", "quality": 0.8}}
    test.run_until_idle()
    run = test.store.get_run(created.workflow_run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.output == {"path": "cat-320.webp", "width": 320}


# --8<-- [end:merge]


# --8<-- [start:errors]
def rejected(command: RunCreate) -> tuple[str, ...]:
    """The problems listed by the error run.create raises for ``command``."""
    test = create_test_kernel(thumbnails)
    try:
        test.dispatch(command)
    except (InvalidInputError, InvalidConfigError) as error:
        assert test.store.list_runs() == []  # nothing was written
        return error.problems
    raise AssertionError("expected the command to be rejected")


def rejected_runs() -> None:
    good_input = {"path": "cat.png", "width": 4000}
    assert rejected(RunCreate(workflow_id="thumbnails", input={"path": "cat.png"})) == (
        "input.width: required field missing",
    )
    assert rejected(RunCreate(workflow_id="thumbnails", input={**good_input, "width": "wide"})) == (
        "input.width: expected int, got 'wide'",
    )
    assert rejected(RunCreate(workflow_id="thumbnails", input={**good_input, "dpi": 300})) == (
        "input: unknown field 'dpi'",
    )
    assert rejected(
        RunCreate(workflow_id="thumbnails", input=good_input, config={"resize": {"width": "320"}})
    ) == ("config.resize.width: expected int, got '320'",)
    assert rejected(
        RunCreate(workflow_id="thumbnails", input=good_input, config={"resize": {"height": 1}})
    ) == ("config.resize: unknown field 'height'",)
    assert rejected(RunCreate(workflow_id="thumbnails", input=good_input, config={"crop": {}})) == (
        "config: unknown stage 'crop' (workflow 'thumbnails' has 'resize')",
    )


# --8<-- [end:errors]


def main() -> None:
    run_with_config()
    rejected_runs()


if __name__ == "__main__":
    main()
