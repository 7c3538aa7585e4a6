"""Only an async-batch stage may return ``Suspend`` (SPEC §4.1, §4.2)."""
# Expectation markers must stay on the line mypy reports, so this file is not reformatted.
# fmt: off
# ruff: noqa: E501

from datetime import timedelta

import attrs

from kernel import CompletionCheck, StageContext, Suspend, define_async_batch_stage, define_stage


@attrs.frozen
class Job:
    name: str


@attrs.frozen
class NoConfig:
    pass


def _submit(ctx: StageContext[Job, NoConfig]) -> Job | Suspend:
    if ctx.resume_state is None:
        return Suspend({"batch": ctx.input.name}, poll_interval=timedelta(seconds=30))
    return ctx.input


def _check(state: object, ctx: StageContext[Job, NoConfig]) -> CompletionCheck[Job]:
    return CompletionCheck(ready=True, output=ctx.input)


# An async-batch stage may suspend.
batch = define_async_batch_stage(id="batch", name="Batch", input=Job, output=Job, config=NoConfig, execute=_submit, check_completion=_check)

# A plain stage may not: nothing would ever poll it.
plain = define_stage(id="plain", name="Plain", input=Job, output=Job, config=NoConfig, execute=_submit)  # E: Argument "execute" to "define_stage" has incompatible type
