"""Provider adapters: built from the environment, or around an SDK client you configure."""

from decimal import Decimal

import anthropic
import openai

from adapters import create_kernel
from adapters.ai.anthropic import AnthropicProvider
from adapters.ai.openai import OpenAIProvider
from adapters.memory import InMemoryStore
from kernel import AIConfig, Kernel, ModelPrice, PriceTable


def from_the_environment() -> tuple[OpenAIProvider, AnthropicProvider]:
    # --8<-- [start:env]
    openai_provider = OpenAIProvider()  # reads OPENAI_API_KEY on its first call
    anthropic_provider = AnthropicProvider()  # reads ANTHROPIC_API_KEY on its first call
    # --8<-- [end:env]
    return openai_provider, anthropic_provider


def with_clients() -> tuple[OpenAIProvider, AnthropicProvider, OpenAIProvider]:
    # --8<-- [start:client]
    openai_provider = OpenAIProvider(
        openai.OpenAI(api_key="sk-...", timeout=60.0, max_retries=0),
    )
    anthropic_provider = AnthropicProvider(
        anthropic.Anthropic(api_key="sk-ant-...", timeout=60.0, max_retries=0),
        default_max_tokens=4096,  # sent when a call sets no max_tokens
    )
    # An OpenAI-compatible server under a name of its own: its models are "local:..."
    local = OpenAIProvider(
        openai.OpenAI(api_key="unused", base_url="http://localhost:8000/v1"), name="local"
    )
    # --8<-- [end:client]
    return openai_provider, anthropic_provider, local


def wire(openai_provider: OpenAIProvider, anthropic_provider: AnthropicProvider) -> Kernel:
    # --8<-- [start:kernel]
    prices = PriceTable(
        {
            "openai:gpt-4o-mini": ModelPrice(
                Decimal("0.15"), Decimal("0.60"), cached_input=Decimal("0.075")
            ),
            "anthropic:claude-haiku-4-5": ModelPrice(
                Decimal("1"), Decimal("5"), cached_input=Decimal("0.10")
            ),
        }
    )
    return create_kernel(
        store=InMemoryStore(),
        ai=AIConfig([openai_provider, anthropic_provider], prices),  # ctx.ai
        batch_providers=[openai_provider, anthropic_provider],  # define_llm_batch_stage
    )
    # --8<-- [end:kernel]


def main() -> None:
    """Nothing here needs a key or the network: clients are built, never called."""
    from_env = from_the_environment()
    assert [provider.name for provider in from_env] == ["openai", "anthropic"]
    openai_provider, anthropic_provider, local = with_clients()
    assert (local.name, anthropic_provider.default_max_tokens) == ("local", 4096)
    kernel = wire(openai_provider, anthropic_provider)
    assert kernel is not None
