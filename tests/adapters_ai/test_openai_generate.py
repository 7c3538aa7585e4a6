"""``OpenAIProvider.generate`` and ``embed``: what is sent to Chat Completions and
Embeddings, and how the answers (usage above all) are read."""

from __future__ import annotations

import pytest

from adapters.ai.openai import OpenAIProvider
from kernel import AIRequest, EmbedRequest, Message, ProviderError, Usage
from kernel.ports import AIProvider, BatchProvider
from tests.adapters_ai.openai_server import OpenAIServer, completion, usage

CHAT = "/v1/chat/completions"

PERSON = {
    "title": "Person",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_the_adapter_implements_both_ports(openai_provider: OpenAIProvider) -> None:
    assert isinstance(openai_provider, AIProvider)
    assert isinstance(openai_provider, BatchProvider)
    assert (openai_provider.name, openai_provider.max_items) == ("openai", 50_000)


def test_a_reply_becomes_an_ai_response(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    openai_server.completions.append(
        completion("Bonjour", id="chatcmpl-42", usage=usage(20, 4), finish_reason="length")
    )
    response = openai_provider.generate(AIRequest("gpt-4o-mini", [Message("user", "Hi")]))
    assert response.text == "Bonjour"
    assert response.usage == Usage(20, 4)
    assert response.model == "gpt-4o-mini-2024-07-18"  # the model that answered
    assert (response.finish_reason, response.provider_id) == ("length", "chatcmpl-42")
    assert response.usage_note is None


def test_cached_and_reasoning_tokens_are_normalised(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    """Cached tokens stay part of the input; reasoning tokens come out of OpenAI's
    completion tokens, which count them."""
    openai_server.completions.append(completion(usage=usage(1_000, 300, cached=600, reasoning=200)))
    response = openai_provider.generate(AIRequest("o4-mini", [Message("user", "Think")]))
    assert response.usage == Usage(
        input_tokens=1_000, output_tokens=100, cached_input_tokens=600, reasoning_tokens=200
    )
    assert response.usage.total_tokens == 1_300


def test_the_request_body_carries_system_messages_limits_and_the_schema(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    request = AIRequest(
        "gpt-4o-mini",
        [Message("user", "Who?"), Message("assistant", "Ada."), Message("user", "Age?")],
        system="Answer as JSON.",
        max_tokens=50,
        temperature=0.2,
        json_schema=PERSON,
    )
    openai_provider.generate(request)
    [body] = openai_server.bodies(CHAT)
    assert body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Answer as JSON."},
            {"role": "user", "content": "Who?"},
            {"role": "assistant", "content": "Ada."},
            {"role": "user", "content": "Age?"},
        ],
        "max_completion_tokens": 50,
        "temperature": 0.2,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Person", "schema": PERSON, "strict": True},
        },
    }


def test_a_schema_strict_mode_would_refuse_is_sent_without_strict(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    """Strict mode answers 400 to a schema with optional properties or open objects."""
    loose = {"type": "object", "properties": {"name": {"type": "string"}}}
    openai_provider.generate(AIRequest("gpt-4o-mini", [Message("user", "x")], json_schema=loose))
    [body] = openai_server.bodies(CHAT)
    assert body["response_format"]["json_schema"] == {
        "name": "output",
        "schema": loose,
        "strict": False,
    }


def test_a_prefixed_model_name_is_sent_bare_and_options_as_body_fields(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    request = AIRequest(
        "openai:gpt-4o-mini", [Message("user", "x")], options={"seed": 7, "top_p": 0.9}
    )
    openai_provider.generate(request)
    [body] = openai_server.bodies(CHAT)
    assert body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "x"}],
        "seed": 7,
        "top_p": 0.9,
    }


def test_a_reply_without_usage_is_recorded_as_zero_tokens_with_a_note(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    openai_server.completions.append(completion("ok", usage=None))
    response = openai_provider.generate(AIRequest("gpt-4o-mini", [Message("user", "x")]))
    assert (response.text, response.usage) == ("ok", Usage(0, 0))
    assert response.usage_note == "provider reported no usage"


def test_a_reply_with_partial_usage_keeps_what_it_has_and_says_what_is_missing(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    openai_server.completions.append(completion(usage={"prompt_tokens": 9, "total_tokens": 9}))
    response = openai_provider.generate(AIRequest("gpt-4o-mini", [Message("user", "x")]))
    assert response.usage == Usage(9, 0)
    assert response.usage_note == "provider reported partial usage: completion_tokens missing"


def test_a_refusal_is_an_empty_text_with_finish_reason_refusal(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    openai_server.completions.append(
        completion(None, refusal="I can't help with that.", usage=usage(5, 6))
    )
    response = openai_provider.generate(AIRequest("gpt-4o-mini", [Message("user", "x")]))
    assert (response.text, response.finish_reason) == ("", "refusal")
    assert response.usage == Usage(5, 6)  # paid for all the same


def test_embeddings_come_back_in_the_order_of_the_texts(
    openai_server: OpenAIServer, openai_provider: OpenAIProvider
) -> None:
    """The stand-in answers in reverse order: OpenAI's ``index`` puts them back."""
    response = openai_provider.embed(
        EmbedRequest("text-embedding-3-small", ["one", "three words here"])
    )
    assert response.vectors == ((3.0, 0.5), (16.0, 0.5))
    assert response.usage == Usage(4, 0)
    assert response.model == "text-embedding-3-small"
    [body] = openai_server.bodies("/v1/embeddings")
    assert body == {
        "model": "text-embedding-3-small",
        "input": ["one", "three words here"],
        "encoding_format": "float",
    }


def test_without_a_client_the_sdk_client_is_built_on_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Importing and constructing need no key; the first call without one fails
    for good, naming the provider."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = OpenAIProvider()
    with pytest.raises(ProviderError) as raised:
        provider.generate(AIRequest("gpt-4o-mini", [Message("user", "x")]))
    assert raised.value.retryable is False
    assert str(raised.value).startswith("openai: ")
    assert "api_key" in str(raised.value)


def test_find_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="find_limit: expected >= 1, got 0"):
        OpenAIProvider(find_limit=0)
