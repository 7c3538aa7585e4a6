"""Workflows that wait for signals, for the ``wfk run signal`` and ``wfk schedule`` tests.

Importable by ``wfk`` subprocesses: ``--app tests.hosts.signal_apps:approval_app``.

``approval``: ``draft → approve → publish``. ``approve`` is a signal stage
waiting (at most 48 hours) for the signal ``approval``, whose payload is an
:class:`ApprovalDecision`; ``publish`` turns the decision into the run's
output. ``hasty`` is the same, but ``approve`` waits one second only;
``patient``'s waits with no timeout.
"""

from __future__ import annotations

from datetime import timedelta

import attrs

from kernel import StageContext, Workflow, WorkflowBuilder, define_signal_stage, define_stage


@attrs.frozen
class Draft:
    title: str


@attrs.frozen
class ApprovalDecision:
    approved: bool
    by: str
    comment: str = ""


@attrs.frozen
class Published:
    title: str
    approved: bool
    by: str


@attrs.frozen
class NoConfig:
    pass


def draft(ctx: StageContext[Draft, NoConfig]) -> Draft:
    return ctx.input


def publish(ctx: StageContext[ApprovalDecision, NoConfig]) -> Published:
    title: str = ctx.require("draft").title
    return Published(title=title, approved=ctx.input.approved, by=ctx.input.by)


def _workflow(workflow_id: str, timeout: timedelta | None) -> Workflow[Draft, Published]:
    return (
        WorkflowBuilder(workflow_id, workflow_id.title(), input=Draft, output=Published)
        .pipe(
            define_stage(
                id="draft", name="Draft", input=Draft, output=Draft, config=NoConfig, execute=draft
            )
        )
        .pipe(
            define_signal_stage(
                id="approve",
                name="Approve",
                signal="approval",
                output=ApprovalDecision,
                timeout=timeout,
            )
        )
        .pipe(
            define_stage(
                id="publish",
                name="Publish",
                input=ApprovalDecision,
                output=Published,
                config=NoConfig,
                execute=publish,
                dependencies=["draft"],
            )
        )
        .build()
    )


approval_workflow = _workflow("approval", timedelta(hours=48))
hasty_workflow = _workflow("hasty", timedelta(seconds=1))
patient_workflow = _workflow("patient", None)

approval_app = [approval_workflow, hasty_workflow, patient_workflow]
"""What ``--app tests.hosts.signal_apps:approval_app`` loads."""
