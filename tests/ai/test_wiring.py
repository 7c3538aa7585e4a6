"""How a kernel gets its AI configuration and batch providers (SPEC §11, §12.1, §18)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from adapters import create_kernel
from adapters.memory import InMemoryStore
from adapters.otel import Telemetry
from kernel import AIConfig, DefinitionError, StageContext, Status
from kernel.dispatch import Kernel
from testing import (
    CollectingEventSink,
    FakeAIProvider,
    FakeClock,
    TestKernel,
    create_test_kernel,
)
from testing.batch import FakeBatchProvider
from tests.ai.support import PRICES, NoConfig, Out, Topic, one_stage, run_to_end


def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
    return Out(ctx.ai.generate_text("fake:small", "Hi").text)


def driven(kernel: Kernel) -> TestKernel:
    assert isinstance(kernel.clock, FakeClock) and isinstance(kernel.sink, CollectingEventSink)
    return TestKernel(kernel, kernel.store, kernel.clock, kernel.sink)


@pytest.mark.parametrize("traced", [False, True], ids=["plain", "telemetry"])
def test_create_kernel_passes_the_ai_config_to_every_stage(traced: bool) -> None:
    fake = FakeAIProvider(replies=["Hello"])
    options: dict[str, Any] = {}
    if traced:
        options["telemetry"] = Telemetry(tracer_provider=TracerProvider())
    kernel = create_kernel(
        one_stage(ask),
        store=InMemoryStore(),
        clock=FakeClock(),
        sink=CollectingEventSink(),
        ai=AIConfig([fake], PRICES),
        **options,
    )
    run = run_to_end(driven(kernel))

    assert (run.status, run.output) == (Status.COMPLETED, {"value": "Hello"})
    assert kernel.ai_config is not None and kernel.ai_config.providers == (fake,)
    assert len(kernel.store.get_usage(run.id)) == 1


def test_batch_providers_are_kept_by_name() -> None:
    first, second = FakeBatchProvider(name="one"), FakeBatchProvider(name="two")
    tk = create_test_kernel(batch_providers=[first, second])
    assert dict(tk.kernel.batch_providers) == {"one": first, "two": second}
    assert dict(create_test_kernel().kernel.batch_providers) == {}


def test_two_batch_providers_with_one_name_are_refused() -> None:
    with pytest.raises(DefinitionError, match="batch_providers: two providers are named 'same'"):
        create_kernel(
            store=InMemoryStore(),
            batch_providers=[FakeBatchProvider(name="same"), FakeBatchProvider(name="same")],
        )


def test_ai_must_be_an_ai_config() -> None:
    with pytest.raises(TypeError, match=r"ai: expected an AIConfig\(providers=..., prices=...\)"):
        create_test_kernel(ai={"providers": []})  # type: ignore[call-overload]
