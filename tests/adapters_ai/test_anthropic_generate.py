"""``AnthropicProvider.generate`` and ``embed``: what is sent to the Messages API
and how the answers (usage above all) are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.ai.anthropic import AnthropicProvider
from kernel import AIRequest, EmbedRequest, Message, ProviderError, Usage
from kernel.ports import AIProvider, BatchProvider
from tests.adapters_ai.anthropic_server import AnthropicServer, message, usage

MESSAGES = "/v1/messages"


def test_the_adapter_implements_both_ports(anthropic_provider: AnthropicProvider) -> None:
    assert isinstance(anthropic_provider, AIProvider)
    assert isinstance(anthropic_provider, BatchProvider)
    assert (anthropic_provider.name, anthropic_provider.max_items) == ("anthropic", 100_000)


def test_the_text_blocks_of_a_reply_are_joined(
    anthropic_server: AnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    """The thinking block the stand-in puts first is not part of the text."""
    anthropic_server.messages.append(
        message(
            "Bonjour", " tout le monde", id="msg_42", usage=usage(20, 4), stop_reason="max_tokens"
        )
    )
    response = anthropic_provider.generate(AIRequest("claude-haiku-4-5", [Message("user", "Hi")]))
    assert response.text == "Bonjour tout le monde"
    assert response.usage == Usage(20, 4)
    assert response.model == "claude-haiku-4-5-20251001"
    assert (response.finish_reason, response.provider_id) == ("max_tokens", "msg_42")
    assert response.usage_note is None


def test_cache_reads_and_writes_count_as_input_and_reads_as_cached(
    anthropic_server: AnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    """Anthropic's ``input_tokens`` leave out the tokens read from or written to the
    cache; the kernel's input tokens include both."""
    anthropic_server.messages.append(
        message(usage=usage(100, 40, cache_read=900, cache_creation=300))
    )
    response = anthropic_provider.generate(AIRequest("claude-sonnet-4-5", [Message("user", "x")]))
    assert response.usage == Usage(input_tokens=1_300, output_tokens=40, cached_input_tokens=900)


def test_the_request_body_takes_system_apart_and_defaults_max_tokens(
    anthropic_server: AnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    request = AIRequest(
        "claude-haiku-4-5",
        [
            Message("system", "Use metric units."),
            Message("user", "How far?"),
            Message("assistant", "Which trip?"),
            Message("user", "Paris to Lyon"),
        ],
        system="You are a travel agent.",
    )
    anthropic_provider.generate(request)
    [body] = anthropic_server.bodies(MESSAGES)
    assert body == {
        "model": "claude-haiku-4-5",
        "max_tokens": 1024,  # the Messages API requires one
        "system": "You are a travel agent.\n\nUse metric units.",
        "messages": [
            {"role": "user", "content": "How far?"},
            {"role": "assistant", "content": "Which trip?"},
            {"role": "user", "content": "Paris to Lyon"},
        ],
    }


def test_a_schema_becomes_structured_output_and_temperature_an_extra_field(
    anthropic_server: AnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    schema = {"type": "object", "properties": {"km": {"type": "integer"}}, "required": ["km"]}
    request = AIRequest(
        "anthropic:claude-haiku-4-5",
        [Message("user", "Distance?")],
        max_tokens=200,
        temperature=0.0,
        json_schema=schema,
        options={"top_k": 5},
    )
    anthropic_provider.generate(request)
    [body] = anthropic_server.bodies(MESSAGES)
    assert body == {
        "model": "claude-haiku-4-5",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "Distance?"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
        "temperature": 0.0,
        "top_k": 5,
    }


def test_default_max_tokens_is_configurable(anthropic_server: AnthropicServer) -> None:
    provider = AnthropicProvider(anthropic_server.client(), default_max_tokens=4096)
    provider.generate(AIRequest("claude-haiku-4-5", [Message("user", "x")]))
    [body] = anthropic_server.bodies(MESSAGES)
    assert body["max_tokens"] == 4096
    with pytest.raises(ValueError, match="default_max_tokens: expected >= 1, got 0"):
        AnthropicProvider(default_max_tokens=0)


def test_a_reply_without_usage_is_recorded_as_zero_tokens_with_a_note(
    anthropic_server: AnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    anthropic_server.messages.append(message("ok", usage=None))
    response = anthropic_provider.generate(AIRequest("claude-haiku-4-5", [Message("user", "x")]))
    assert (response.text, response.usage) == ("ok", Usage(0, 0))
    assert response.usage_note == "provider reported no usage"


def test_embed_refuses_for_good(anthropic_provider: AnthropicProvider) -> None:
    with pytest.raises(ProviderError, match="Anthropic has no embeddings API") as raised:
        anthropic_provider.embed(EmbedRequest("voyage-3", ["text"]))
    assert raised.value.retryable is False


def test_without_credentials_the_first_call_fails_for_good(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Importing and constructing need no key; the first call without one fails,
    naming what to set, before anything is sent."""
    for variable in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_PROFILE",
        "ANTHROPIC_CONFIG_DIR",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no profiles on disk either
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    provider = AnthropicProvider()
    with pytest.raises(ProviderError, match="set ANTHROPIC_API_KEY") as raised:
        provider.generate(AIRequest("claude-haiku-4-5", [Message("user", "x")]))
    assert raised.value.retryable is False
