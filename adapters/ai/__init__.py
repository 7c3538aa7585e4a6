"""Provider adapters for ``ctx.ai`` and LLM batch stages, over the official SDKs.

``adapters.ai.openai.OpenAIProvider`` and ``adapters.ai.anthropic.AnthropicProvider``
implement ``kernel.ports.AIProvider`` and ``kernel.ports.BatchProvider``. They need
the ``ai`` extra (``pip install 'workflow-kernel[ai]'``); importing this package
does not import the SDKs, each module does. docs/providers.md says how to set
them up and what each maps.
"""
