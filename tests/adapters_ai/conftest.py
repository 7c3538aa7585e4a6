"""The provider adapters over their real SDK clients, whose HTTP goes to an
in-memory stand-in of the provider's API (no network, no key)."""

from __future__ import annotations

import pytest

from adapters.ai.anthropic import AnthropicProvider
from adapters.ai.openai import OpenAIProvider
from tests.adapters_ai.anthropic_server import AnthropicServer
from tests.adapters_ai.openai_server import OpenAIServer


@pytest.fixture
def openai_server() -> OpenAIServer:
    return OpenAIServer()


@pytest.fixture
def openai_provider(openai_server: OpenAIServer) -> OpenAIProvider:
    return OpenAIProvider(openai_server.client())


@pytest.fixture
def anthropic_server() -> AnthropicServer:
    return AnthropicServer()


@pytest.fixture
def anthropic_provider(anthropic_server: AnthropicServer) -> AnthropicProvider:
    return AnthropicProvider(anthropic_server.client())
