"""``ctx.ai``: text, objects and embeddings, each call written to the ledger once (SPEC §11)."""

from __future__ import annotations

import threading
from decimal import Decimal

import attrs

from kernel import (
    AIRequest,
    AIResponse,
    EmbedRequest,
    Message,
    StageContext,
    Status,
    Usage,
)
from testing import FakeAIProvider
from tests.ai.support import CENT, NoConfig, Out, Topic, ai_kernel, one_stage, run_to_end


def test_generate_text_returns_the_reply_with_its_usage_and_cost() -> None:
    seen = []

    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        result = ctx.ai.generate_text("fake:small", f"Explain {ctx.input.text}")
        seen.append(result)
        return Out(result.text)

    fake = FakeAIProvider(replies=["The moon pulls the sea."])
    run = run_to_end(ai_kernel(one_stage(ask), fake))

    assert run.status == Status.COMPLETED
    assert run.output == {"value": "The moon pulls the sea."}
    assert [(r.text, r.usage, r.cost) for r in seen] == [
        ("The moon pulls the sea.", Usage(10, 5), CENT)
    ]


def test_the_provider_gets_the_bare_model_name_and_every_option() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        messages = [Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Tides?")]
        reply = ctx.ai.generate_text(
            "fake:small", messages=messages, system="Be brief.", max_tokens=50, temperature=0.2
        )
        return Out(reply.text)

    fake = FakeAIProvider(replies=["Twice a day."])
    run_to_end(ai_kernel(one_stage(ask), fake))

    assert fake.requests == [
        AIRequest(
            "small",
            [Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Tides?")],
            system="Be brief.",
            max_tokens=50,
            temperature=0.2,
        )
    ]


def test_each_call_is_recorded_once_in_the_ledger_and_in_the_run_totals() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        first = ctx.ai.generate_text("fake:small", "one")
        second = ctx.ai.generate_text("fake:small", "two")
        return Out(first.text + second.text)

    tk = ai_kernel(one_stage(ask), FakeAIProvider(replies=["a", "b"]))
    run = run_to_end(tk)

    ledger = tk.store.get_usage(run.id)
    assert [
        (e.model, e.kind, e.stage_id, e.attempt, e.usage, e.cost, e.priced) for e in ledger
    ] == [("fake:small", "text", "ask", 1, Usage(10, 5), CENT, True)] * 2
    assert len({entry.call_id for entry in ledger}) == 2
    assert (run.total_cost, run.total_tokens) == (2 * CENT, 30)


@attrs.frozen
class Tide:
    place: str
    height_m: float
    rising: bool


def test_generate_object_sends_the_schema_and_structures_the_json_reply() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        result = ctx.ai.generate_object("fake:small", "Tide at Riga?", output=Tide)
        assert result.value == Tide(place="Riga", height_m=0.4, rising=True)
        return Out(result.value.place)

    fake = FakeAIProvider(replies=['{"place": "Riga", "height_m": 0.4, "rising": true}'])
    tk = ai_kernel(one_stage(ask), fake)
    run = run_to_end(tk)

    assert run.status == Status.COMPLETED
    request = fake.requests[0]
    assert isinstance(request, AIRequest)
    assert request.json_schema == {
        "type": "object",
        "properties": {
            "place": {"type": "string"},
            "height_m": {"type": "number"},
            "rising": {"type": "boolean"},
        },
        "required": ["place", "height_m", "rising"],
        "additionalProperties": False,
    }
    assert [entry.kind for entry in tk.store.get_usage(run.id)] == ["object"]


def test_a_reply_that_does_not_fit_is_repaired_and_both_tries_are_paid() -> None:
    results = []

    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        result = ctx.ai.generate_object("fake:small", "Tide at Riga?", output=Tide)
        results.append(result)
        return Out(result.value.place)

    fake = FakeAIProvider(
        replies=[
            '{"place": "Riga", "height_m": "low", "rising": true}',
            '{"place": "Riga", "height_m": 0.4, "rising": true}',
        ]
    )
    tk = ai_kernel(one_stage(ask), fake)
    run = run_to_end(tk)

    assert run.status == Status.COMPLETED
    assert [(r.usage, r.cost) for r in results] == [(Usage(20, 10), 2 * CENT)]
    assert [entry.kind for entry in tk.store.get_usage(run.id)] == ["object", "object"]
    repair = fake.requests[1]
    assert isinstance(repair, AIRequest)
    assert repair.messages[1] == Message(
        "assistant", '{"place": "Riga", "height_m": "low", "rising": true}'
    )
    assert "- output.height_m: expected float, got 'low'" in repair.messages[2].content


def test_no_valid_object_after_the_repairs_fails_the_stage_for_good() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        return Out(ctx.ai.generate_object("fake:small", "Tide?", output=Tide).value.place)

    fake = FakeAIProvider(replies=["It is high tide.", "Sorry: high tide.", "unused"])
    tk = ai_kernel(one_stage(ask), fake)
    run = run_to_end(tk)

    assert run.status == Status.FAILED
    assert run.error is not None and run.error.startswith(
        "AI_OUTPUT_INVALID: fake:small gave no valid Tide in 2 tries; "
        "the last reply: the reply is not valid JSON"
    )
    assert len(fake.requests) == 2  # one try and one repair, in one attempt only
    assert [entry.kind for entry in tk.store.get_usage(run.id)] == ["object", "object"]


def test_repair_attempts_zero_gives_up_after_the_first_reply() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        return Out(ctx.ai.generate_object("fake:small", "Tide?", output=Tide).value.place)

    fake = FakeAIProvider(replies=["{}", "unused"])
    run = run_to_end(ai_kernel(one_stage(ask), fake, repair_attempts=0))

    assert run.error is not None
    assert "in 1 try" in run.error and "output.place: required field missing" in run.error
    assert len(fake.requests) == 1


def test_embed_returns_one_vector_per_text_and_records_an_embed_call() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        result = ctx.ai.embed("fake:embedder", ["tide", "moon", "tide"])
        assert len(result.vectors) == 3 and result.vectors[0] == result.vectors[2]
        assert result.vectors[0] != result.vectors[1]
        assert (result.usage, result.cost) == (Usage(30, 0), Decimal("0.00300000"))
        return Out("embedded")

    fake = FakeAIProvider()
    tk = ai_kernel(one_stage(ask), fake)
    run = run_to_end(tk)

    assert run.status == Status.COMPLETED, run.error
    assert fake.requests == [EmbedRequest("embedder", ["tide", "moon", "tide"])]
    assert [(e.kind, e.model) for e in tk.store.get_usage(run.id)] == [("embed", "fake:embedder")]


def test_a_note_from_the_adapter_reaches_the_ledger() -> None:
    def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        return Out(ctx.ai.generate_text("fake:small", "Hi").text)

    reply = AIResponse("Hi", Usage(0, 0), "small", usage_note="the provider reported no usage")
    tk = ai_kernel(one_stage(ask), FakeAIProvider(replies=[reply]))
    run = run_to_end(tk)

    assert [entry.note for entry in tk.store.get_usage(run.id)] == [
        "the provider reported no usage"
    ]


def test_the_async_forms_run_the_provider_off_the_stage_event_loop() -> None:
    threads: list[str] = []

    def answer(request: AIRequest) -> str:
        threads.append(threading.current_thread().name)
        return '{"place": "Riga", "height_m": 0.4, "rising": true}'

    async def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
        text = await ctx.ai.agenerate_text("fake:small", "Hi")
        tide = await ctx.ai.agenerate_object("fake:small", "Tide?", output=Tide)
        vectors = await ctx.ai.aembed("fake:embedder", ["tide"])
        return Out(f"{text.text[:1]} {tide.value.place} {len(vectors.vectors)}")

    tk = ai_kernel(one_stage(ask), FakeAIProvider(replies=answer))
    run = run_to_end(tk)

    assert run.status == Status.COMPLETED, run.error
    assert run.output == {"value": "{ Riga 1"}
    assert len(threads) == 2 and "wfk-stage-loop" not in threads
    assert [e.kind for e in tk.store.get_usage(run.id)] == ["text", "object", "embed"]
