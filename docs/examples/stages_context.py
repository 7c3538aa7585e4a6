"""A three-stage workflow that uses everything a stage context offers."""

from decimal import Decimal

import attrs

from kernel import (
    RunCreate,
    StageContext,
    StageProgress,
    StageResult,
    WorkflowBuilder,
    define_stage,
)
from testing import CollectingEventSink, create_test_kernel


# --8<-- [start:types]
@attrs.frozen
class Article:
    title: str
    body: str


@attrs.frozen
class Tokens:
    tokens: list[str]


@attrs.frozen
class Keywords:
    keywords: list[str]


@attrs.frozen
class Digest:
    title: str
    keywords: list[str]
    token_count: int


@attrs.frozen
class TokenizeConfig:
    lowercase: bool = True


@attrs.frozen
class KeywordsConfig:
    top: int = 3
    stopwords: list[str] = attrs.field(factory=lambda: ["a", "and", "the", "of", "to"])


@attrs.frozen
class NoConfig:
    pass


# --8<-- [end:types]


# --8<-- [start:stages]
def tokenize(ctx: StageContext[Article, TokenizeConfig]) -> Tokens:
    body = ctx.input.body.lower() if ctx.config.lowercase else ctx.input.body
    tokens = [word.strip(".,;:!?") for word in body.split()]
    ctx.log("INFO", "tokenized", {"count": len(tokens), "attempt": ctx.attempt})
    return Tokens(tokens=tokens)


def pick_keywords(ctx: StageContext[Tokens, KeywordsConfig]) -> StageResult[Keywords]:
    words = [word for word in ctx.input.tokens if word not in ctx.config.stopwords]
    counts: dict[str, int] = {}
    for done, word in enumerate(words, 1):
        counts[word] = counts.get(word, 0) + 1
        if done % 4 == 0:
            ctx.progress(done / len(words), f"counted {done} of {len(words)} words")
    ctx.storage.save("counts", counts)  # a JSON value kept with the run
    top = sorted(counts, key=lambda word: (-counts[word], word))[: ctx.config.top]
    return StageResult(
        Keywords(keywords=top),
        metrics={"total_tokens": len(words), "total_cost": 0.002, "distinct_words": len(counts)},
    )


def digest(ctx: StageContext[None, NoConfig]) -> Digest:
    tokens = ctx.require(tokenize_stage)  # mypy knows: Tokens
    same_tokens = ctx.require("tokenize")  # the same Tokens, but typed Any
    keywords = ctx.optional(keywords_stage)  # Keywords | None
    counts = ctx.storage.load("counts")  # what pick_keywords saved
    assert same_tokens == tokens and counts["kernel"] == 2
    return Digest(
        title=f"run {ctx.workflow_run_id}, stage {ctx.stage_number} ({ctx.stage_name})",
        keywords=keywords.keywords if keywords else [],
        token_count=len(tokens.tokens),
    )


tokenize_stage = define_stage(
    id="tokenize",
    name="Tokenize",
    description="Split the body into lower-case words",
    input=Article,
    output=Tokens,
    config=TokenizeConfig,
    execute=tokenize,
)
keywords_stage = define_stage(
    id="keywords",
    name="Keywords",
    input=Tokens,
    output=Keywords,
    config=KeywordsConfig,
    execute=pick_keywords,
)
digest_stage = define_stage(
    id="digest",
    name="Digest",
    input=None,  # reads earlier outputs through ctx.require
    output=Digest,
    config=NoConfig,
    execute=digest,
    dependencies=["tokenize", "keywords"],
)
articles = (
    WorkflowBuilder("articles", "Articles", "Keywords of an article", input=Article, output=Digest)
    .pipe(tokenize_stage)
    .pipe(keywords_stage)
    .pipe(digest_stage)
    .build()
)
# --8<-- [end:stages]


# --8<-- [start:run]
def main() -> None:
    sink = CollectingEventSink()
    test = create_test_kernel(articles, sink=sink)
    body = "The kernel decides and the store applies. The kernel never waits; the store commits."
    created = test.dispatch(
        RunCreate(
            workflow_id="articles",
            input={"title": "Kernels", "body": body},
            config={"keywords": {"top": 2}},
        )
    )
    test.run_until_idle()

    run_id = created.workflow_run_id
    run = test.store.get_run(run_id)
    assert run is not None and run.output == {
        "title": f"run {run_id}, stage 3 (Digest)",
        "keywords": ["kernel", "store"],
        "token_count": 14,
    }
    # total_cost and total_tokens of every stage are added to the run's totals ...
    assert (run.total_cost, run.total_tokens) == (Decimal("0.002"), 9)
    # ... and each stage record keeps all of its metrics.
    tokenize_record, keywords_record, _ = test.store.get_stages(run_id)
    assert keywords_record.metrics["distinct_words"] == 7
    # Logs are stored as they are written; progress becomes stage:progress events.
    [log] = test.store.get_logs(run_id)
    assert (log.level, log.message, log.metadata) == (
        "INFO",
        "tokenized",
        {"count": 14, "attempt": 1},
    )
    assert log.stage_record_id == tokenize_record.id
    assert [event.message for event in sink.of_type(StageProgress)] == [
        "counted 4 of 9 words",
        "counted 8 of 9 words",
    ]


# --8<-- [end:run]


if __name__ == "__main__":
    main()
