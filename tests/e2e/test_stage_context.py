"""What stage code can reach through ``ctx`` (SPEC §4.1)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from kernel import LogLevel, StageContext, Status
from testing import FakeClock
from tests.harness import T0, MakeKernel, create, events_of, run_of, stage_of
from tests.workflows import Calls, NoConfig, Num, add, costly, custom, echo, pipeline


def test_require_by_stage_object_gives_the_typed_output(make_tk: MakeKernel) -> None:
    """SPEC §4.1: ``ctx.require(stage)`` returns the earlier output as its output type."""
    seen: list[Any] = []
    first = add(Calls(), "first")

    def read(ctx: StageContext[Num, NoConfig]) -> Num:
        seen.append(ctx.require(first))
        return ctx.input

    tk = make_tk(pipeline("reader", first, echo(Calls(), "middle"), custom("read", read)))
    create(tk, "reader", 4)

    tk.run_until_idle()

    assert seen == [Num(5)]


def test_require_by_id_gives_the_output_too(make_tk: MakeKernel) -> None:
    """SPEC §4.1: ``ctx.require("stage_id")`` works as well (typed by the workflow)."""
    seen: list[Any] = []

    def read(ctx: StageContext[Num, NoConfig]) -> Num:
        seen.append(ctx.require("first"))
        return ctx.input

    tk = make_tk(pipeline("reader", add(Calls(), "first"), custom("read", read)))
    create(tk, "reader", 4)

    tk.run_until_idle()

    assert seen == [Num(5)]


def test_require_of_a_stage_that_has_not_run_fails_the_attempt_clearly(
    make_tk: MakeKernel,
) -> None:
    """SPEC §4.1: ``require`` raises a clear error naming the stage."""
    later = add(Calls(), "later")

    def too_early(ctx: StageContext[Num, NoConfig]) -> Num:
        return ctx.require(later)

    tk = make_tk(pipeline("eager", custom("eager", too_early), later))
    run_id = create(tk, "eager")

    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert run.status == Status.FAILED
    assert run.error == (
        "StageOutputMissingError: stage 'later' has no output yet: it is not an earlier, "
        "completed stage of this run"
    )


def test_optional_gives_none_for_a_stage_that_has_not_run(make_tk: MakeKernel) -> None:
    """SPEC §4.1: ``ctx.optional`` returns ``None`` instead of raising."""
    seen: list[Any] = []
    later = add(Calls(), "later")

    def peek(ctx: StageContext[Num, NoConfig]) -> Num:
        seen.append((ctx.optional(later), ctx.optional("peek")))
        return ctx.input

    tk = make_tk(pipeline("peeky", custom("peek", peek), later))
    create(tk, "peeky")

    tk.run_until_idle()

    assert seen == [(None, None)]


def test_storage_saves_loads_checks_and_deletes_values(make_tk: MakeKernel) -> None:
    """SPEC §4.1: ``ctx.storage`` keeps JSON values for the run, across stages."""
    seen: list[Any] = []

    def save(ctx: StageContext[Num, NoConfig]) -> Num:
        ctx.storage.save("draft", {"pages": [1, 2]})
        ctx.storage.save("scratch", 1)
        ctx.storage.delete("scratch")
        return ctx.input

    def load(ctx: StageContext[Num, NoConfig]) -> Num:
        seen.append(
            (
                ctx.storage.exists("draft"),
                ctx.storage.load("draft"),
                ctx.storage.exists("scratch"),
                ctx.storage.key("draft"),
            )
        )
        return ctx.input

    tk = make_tk(pipeline("stored", custom("save", save), custom("load", load)))
    run_id = create(tk, "stored")

    tk.run_until_idle()

    key = f"runs/{run_id}/storage/draft"
    assert seen == [(True, {"pages": [1, 2]}, False, key)]
    assert tk.store.get_blob(key) == (True, {"pages": [1, 2]})


def test_storage_load_of_a_missing_value_raises_key_error(make_tk: MakeKernel) -> None:
    """SPEC §4.1: loading what was never saved is a ``KeyError`` naming the key."""
    tk = make_tk(pipeline("missing", custom("load", lambda ctx: ctx.storage.load("nothing"))))
    run_id = create(tk, "missing")

    tk.run_until_idle()

    assert run_of(tk.store, run_id).error == (
        "KeyError: \"no value stored under 'nothing' for this run\""
    )


def test_storage_is_scoped_to_its_run(make_tk: MakeKernel) -> None:
    """SPEC §4.1: two runs saving the same key do not see each other's values."""
    seen: list[Any] = []

    def save_own(ctx: StageContext[Num, NoConfig]) -> Num:
        seen.append(ctx.storage.exists("mine"))
        ctx.storage.save("mine", ctx.input.value)
        return ctx.input

    tk = make_tk(pipeline("own", custom("own", save_own)))
    first, second = create(tk, "own", 1), create(tk, "own", 2)

    tk.run_until_idle()

    assert seen == [False, False]
    assert tk.store.get_blob(f"runs/{first}/storage/mine") == (True, 1)
    assert tk.store.get_blob(f"runs/{second}/storage/mine") == (True, 2)


def test_log_lines_are_stored_with_level_stage_and_time(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §3.2, §4.1: ``ctx.log`` writes as it goes; ``get_logs`` reads them back."""

    def chatty(ctx: StageContext[Num, NoConfig]) -> Num:
        ctx.log("INFO", "starting", {"value": ctx.input.value})
        clock.advance(timedelta(seconds=1))
        ctx.log(LogLevel.WARN, "slow provider")
        return ctx.input

    tk = make_tk(pipeline("chatty", custom("chatty", chatty)))
    run_id = create(tk, "chatty", 3)

    tk.run_until_idle()

    stage = stage_of(tk.store, run_id, "chatty")
    logs = tk.store.get_logs(run_id)
    assert [(e.level, e.message, e.metadata) for e in logs] == [
        (LogLevel.INFO, "starting", {"value": 3}),
        (LogLevel.WARN, "slow provider", {}),
    ]
    assert [e.created_at for e in logs] == [T0, T0 + timedelta(seconds=1)]
    assert {e.stage_record_id for e in logs} == {stage.id}


def test_logs_of_a_failed_attempt_are_kept(make_tk: MakeKernel) -> None:
    """SPEC §5.6: logs are written as they come, not with the finish, so a failure
    keeps them."""

    def log_then_fail(ctx: StageContext[Num, NoConfig]) -> Num:
        ctx.log("ERROR", f"attempt {ctx.attempt} failing")
        raise RuntimeError("no")

    tk = make_tk(pipeline("noisy", custom("noisy", log_then_fail)))
    run_id = create(tk, "noisy")

    tk.run_until_idle()

    assert [e.message for e in tk.store.get_logs(run_id)] == [
        "attempt 1 failing",
        "attempt 2 failing",
        "attempt 3 failing",
    ]


def test_stage_metrics_are_summed_into_the_run_totals(make_tk: MakeKernel) -> None:
    """SPEC §4.1, §12.1: ``StageResult`` metrics add up into total_cost (a ``Decimal``;
    a decimal string on the stage record and in the event) and total_tokens."""
    calls = Calls()
    tk = make_tk(
        pipeline(
            "paid",
            costly(calls, "a", cost=0.5, tokens=100),
            costly(calls, "c", cost=1.0, tokens=3),
            [costly(calls, "b", cost=0.25, tokens=20), echo(calls, "free")],
        )
    )
    run_id = create(tk, "paid")

    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.total_cost, run.total_tokens) == (Decimal("1.75"), 123)
    assert stage_of(tk.store, run_id, "b").metrics == {"total_cost": "0.25", "total_tokens": 20}
    [completed] = events_of(tk.store, run_id, "workflow:completed")
    assert (completed.payload["total_cost"], completed.payload["total_tokens"]) == ("1.75", 123)
