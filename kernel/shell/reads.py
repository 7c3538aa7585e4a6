"""What a phase may load: the open transaction's reads, the registry, and the
loads several commands share (a run with its stages, a group's stored outputs)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from kernel.decisions.lifecycle import StageState, output_key
from kernel.ports import StoreTransaction, WorkflowRegistry
from kernel.records import Job, Json, WorkflowRun, WorkflowStage
from kernel.status import Status
from kernel.workflows import Workflow


class Reads:
    """Loads for one phase, inside its transaction."""

    def __init__(self, tx: StoreTransaction, registry: WorkflowRegistry, now: datetime) -> None:
        self.tx = tx
        """The open transaction, for the reads that choose rows (claims, leases)."""
        self.registry = registry
        self.now = now
        """The decision's time, for reads that choose rows by it (due, stale)."""

    def known_workflow_ids(self) -> Collection[str]:
        """The ids of the workflows this kernel has registered: schedule ticks only
        fire schedules of these (SPEC §19)."""
        return self.registry.workflow_ids()

    def known_versions(self) -> Collection[tuple[str, str]]:
        """The ``(workflow id, version)`` pairs this kernel has registered: claims and
        leases only choose runs and jobs of these (SPEC §16, rolling deploys)."""
        return self.registry.workflow_versions()

    def workflow_of(self, run: WorkflowRun | None) -> Workflow[Any, Any] | None:
        """The registered workflow version of ``run`` (``None`` without a run or a
        registration of its version)."""
        if run is None:
            return None
        return self.registry.get_workflow(run.workflow_id, run.workflow_version)

    def group_outputs(
        self, run_id: str, stages: Sequence[WorkflowStage], group: int
    ) -> dict[str, Json]:
        """Stored outputs of the completed stages of execution group ``group``."""
        outputs: dict[str, Json] = {}
        for stage in stages:
            if stage.execution_group == group and stage.status == Status.COMPLETED:
                found, value = self.tx.get_blob(output_key(run_id, stage.stage_id))
                if found:
                    outputs[stage.stage_id] = value
        return outputs

    def previous_outputs(
        self, run: WorkflowRun | None, stages: Sequence[WorkflowStage], stage_id: str
    ) -> dict[str, Json]:
        """Outputs of the group before ``stage_id``'s in the run's own workflow (the
        stage's input comes from them)."""
        workflow = self.workflow_of(run)
        if run is None or workflow is None or workflow.stage(stage_id) is None:
            return {}
        group = workflow.group_of(stage_id)
        return self.group_outputs(run.id, stages, group - 1) if group > 1 else {}

    def stage_state(
        self, run_id: str, *, group: int | None = None, job: Job | None = None
    ) -> StageState:
        """A run as a stage's outcome (or a transition) sees it: the run, its stages,
        ``job``, the stored outputs of ``group`` (default: of the latest group, once
        none of the run's stages is active), and the workflow."""
        run = self.tx.get_run(run_id)
        stages = self.tx.get_stages(run_id) if run is not None else []
        if group is None:
            finished = bool(stages) and not any(stage.is_active for stage in stages)
            group = max(stage.execution_group for stage in stages) if finished else 0
        outputs = self.group_outputs(run_id, stages, group) if group else {}
        return StageState(run, stages, job, outputs, self.workflow_of(run))
