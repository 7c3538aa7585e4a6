"""``testing.FakeAIProvider`` (SPEC §12.1): scripted replies, recorded requests."""

from __future__ import annotations

import pytest

from kernel import AIRequest, AIResponse, EmbedRequest, Message, ProviderError, Usage
from testing import FakeAIProvider


def request(text: str) -> AIRequest:
    return AIRequest("m", [Message("user", text)])


def test_text_replies_are_given_in_order_with_the_fake_usage() -> None:
    fake = FakeAIProvider(replies=["one", "two"], usage=Usage(3, 2))
    first, second = fake.generate(request("a")), fake.generate(request("b"))

    assert (first.text, first.usage, first.model) == ("one", Usage(3, 2), "m")
    assert second.text == "two"
    assert fake.requests == [request("a"), request("b")]
    assert fake.prompts == ["a", "b"]


def test_a_scripted_response_is_returned_as_it_is() -> None:
    response = AIResponse("x", Usage(100, 1, cached_input_tokens=50), "m-2024", "length")
    assert FakeAIProvider(replies=[response]).generate(request("a")) is response


def test_a_function_answers_from_the_request() -> None:
    fake = FakeAIProvider(replies=lambda req: req.messages[-1].content.upper())
    assert fake.generate(request("shout")).text == "SHOUT"


def test_running_out_of_replies_is_an_error_naming_the_provider() -> None:
    fake = FakeAIProvider(name="scripted", replies=["only"])
    fake.generate(request("a"))
    with pytest.raises(ProviderError) as raised:
        fake.generate(request("b"))
    assert str(raised.value) == (
        "FakeAIProvider 'scripted' has no reply left for request 2 (it was given 1)"
    )
    assert raised.value.retryable is False


def test_embeddings_are_deterministic_and_recorded_as_requests() -> None:
    fake = FakeAIProvider(usage=Usage(4, 9))
    first = fake.embed(EmbedRequest("e", ["tide", "moon"]))
    again = FakeAIProvider().embed(EmbedRequest("e", ["tide"]))

    assert len(first.vectors) == 2 and len(first.vectors[0]) == 8
    assert all(-1 <= number <= 1 for vector in first.vectors for number in vector)
    assert again.vectors[0] == first.vectors[0] != first.vectors[1]
    assert first.usage == Usage(8, 0)
    assert fake.requests == [EmbedRequest("e", ["tide", "moon"])]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "a:b"}, "name: expected a non-empty str without ':', got 'a:b'"),
        ({"replies": "hello"}, "replies: expected a list of str or AIResponse"),
        ({"usage": (10, 5)}, "usage: expected a Usage, got (10, 5)"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(
        (TypeError, ValueError), match=error.replace("(", r"\(").replace(")", r"\)")
    ):
        FakeAIProvider(**kwargs)  # type: ignore[arg-type]
