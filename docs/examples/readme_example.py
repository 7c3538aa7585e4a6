import attrs

from adapters import create_kernel
from adapters.memory import InMemoryStore
from kernel import RunClaimPending, RunCreate, StageContext, WorkflowBuilder, define_stage


@attrs.frozen
class Text:
    text: str


@attrs.frozen
class Words:
    words: list[str]


@attrs.frozen
class NoConfig:
    pass


def split_words(ctx: StageContext[Text, NoConfig]) -> Words:
    return Words(words=ctx.input.text.split())


def pick_longest(ctx: StageContext[Words, NoConfig]) -> Text:
    return Text(text=max(ctx.input.words, key=len))


split = define_stage(
    id="split", name="Split", input=Text, output=Words, config=NoConfig, execute=split_words
)
longest = define_stage(
    id="longest", name="Longest", input=Words, output=Text, config=NoConfig, execute=pick_longest
)
longest_word = (
    WorkflowBuilder("longest-word", "Longest word", input=Text, output=Text)
    .pipe(split)
    .pipe(longest)
    .build()
)

store = InMemoryStore()
kernel = create_kernel(longest_word, store=store)
created = kernel.dispatch(RunCreate(workflow_id="longest-word", input={"text": "a durable kernel"}))
kernel.dispatch(RunClaimPending(worker_id="worker-1"))  # the run starts; its first job is queued
while kernel.execute_next_job("worker-1"):  # run jobs until none is left
    pass

run = store.get_run(created.workflow_run_id)
assert run is not None and run.status == "COMPLETED"
assert run.output == {"text": "durable"}
