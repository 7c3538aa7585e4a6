"""An app for ``wfk --app tests.ai.cli_app:APP``: one AI workflow, the AIConfig its
``ctx.ai`` calls and a batch provider, in one list."""

from __future__ import annotations

from kernel import AIConfig, StageContext
from testing import FakeAIProvider, FakeBatchProvider
from tests.ai.support import PRICES, NoConfig, Out, Topic, one_stage


def ask(ctx: StageContext[Topic, NoConfig]) -> Out:
    return Out(ctx.ai.generate_text("fake:small", f"Tell me about {ctx.input.text}").text)


WORKFLOW = one_stage(ask)
CONFIG = AIConfig([FakeAIProvider(replies=lambda request: "Tides follow the moon.")], PRICES)
APP = [WORKFLOW, CONFIG, FakeBatchProvider()]
