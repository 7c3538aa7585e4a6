"""Sequential and parallel groups, and what each stage receives as input."""

from typing import Any

import attrs

from kernel import RunCreate, StageContext, Status, WorkflowBuilder, define_stage
from testing import create_test_kernel


@attrs.frozen
class Photo:
    url: str


@attrs.frozen
class Pixels:
    width: int
    height: int


@attrs.frozen
class Label:
    text: str


@attrs.frozen
class Caption:
    caption: str


@attrs.frozen
class NoConfig:
    pass


# --8<-- [start:stages]
def decode(ctx: StageContext[Photo, NoConfig]) -> Pixels:
    return Pixels(width=640, height=480)  # group 1 receives the run input


def label(ctx: StageContext[Pixels, NoConfig]) -> Label:
    return Label(text="landscape" if ctx.input.width > ctx.input.height else "portrait")


def measure(ctx: StageContext[Pixels, NoConfig]) -> Label:
    return Label(text=f"{ctx.input.width}x{ctx.input.height}")


def caption_from_mapping(ctx: StageContext[dict[str, Any], NoConfig]) -> Caption:
    # After a parallel group the input is {stage_id: output}, in JSON form.
    outputs = ctx.input
    return Caption(caption=f"{outputs['label']['text']} photo, {outputs['measure']['text']}")


def caption_from_context(ctx: StageContext[None, NoConfig]) -> Caption:
    # Or declare input=None and ask for the typed outputs you need.
    return Caption(
        caption=f"{ctx.require(label_stage).text} photo, {ctx.require(measure_stage).text}"
    )


decode_stage = define_stage(
    id="decode", name="Decode", input=Photo, output=Pixels, config=NoConfig, execute=decode
)
label_stage = define_stage(
    id="label", name="Label", input=Pixels, output=Label, config=NoConfig, execute=label
)
measure_stage = define_stage(
    id="measure", name="Measure", input=Pixels, output=Label, config=NoConfig, execute=measure
)
caption_stage = define_stage(
    id="caption",
    name="Caption",
    input=dict,
    output=Caption,
    config=NoConfig,
    execute=caption_from_mapping,
)
caption_too = define_stage(
    id="caption",
    name="Caption",
    input=None,
    output=Caption,
    config=NoConfig,
    execute=caption_from_context,
)

photos = (
    WorkflowBuilder("photos", "Photos", "Caption a photo", input=Photo, output=Caption)
    .pipe(decode_stage)  # group 1
    .parallel([label_stage, measure_stage])  # group 2: both run at once
    .pipe(caption_stage)  # group 3
    .build()
)
photos_too = (
    WorkflowBuilder("photos-too", "Photos", "Caption a photo", input=Photo, output=Caption)
    .pipe(decode_stage)
    .parallel([label_stage, measure_stage])
    .pipe(caption_too)
    .build()
)
# Ending with a parallel group: the run's output is {stage_id: output}.
labels = (
    WorkflowBuilder("labels", "Labels", input=Photo, output=dict)
    .pipe(decode_stage)
    .parallel([label_stage, measure_stage])
    .build()
)
# --8<-- [end:stages]


# --8<-- [start:shape]
def check_the_shape() -> None:
    assert [[stage.id for stage in group] for group in photos.groups] == [
        ["decode"],
        ["label", "measure"],
        ["caption"],
    ]
    assert photos.group_of("measure") == 2  # execution groups count from 1
    assert photos.stage_number("caption") == 4  # so do positions in the workflow


# --8<-- [end:shape]


# --8<-- [start:run]
def run_the_three_workflows() -> None:
    test = create_test_kernel(photos, photos_too, labels)
    outputs = {}
    for workflow_id in ("photos", "photos-too", "labels"):
        created = test.dispatch(RunCreate(workflow_id=workflow_id, input={"url": "x.jpg"}))
        test.run_until_idle()
        run = test.store.get_run(created.workflow_run_id)
        assert run is not None and run.status == Status.COMPLETED
        outputs[workflow_id] = run.output

    assert outputs["photos"] == {"caption": "landscape photo, 640x480"}
    assert outputs["photos-too"] == {"caption": "landscape photo, 640x480"}
    assert outputs["labels"] == {"label": {"text": "landscape"}, "measure": {"text": "640x480"}}


# --8<-- [end:run]


def main() -> None:
    check_the_shape()
    run_the_three_workflows()


if __name__ == "__main__":
    main()
