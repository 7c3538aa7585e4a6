"""The ``Kernel``: one loop that loads, decides, applies and retries, for every command.

The shell decides nothing. A command's entry in :data:`~kernel.shell.table.TABLE`
gives its first phase; :meth:`Kernel.dispatch` runs each phase in a transaction
(load, pure decision, apply), carries out work between phases outside any
transaction, and returns the result. Every domain rule lives in
:mod:`kernel.decisions`. See ``docs/architecture.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta, tzinfo
from typing import Any, Protocol, TypeVar, runtime_checkable

from returns.result import Failure, Success

from kernel.ai.config import AIConfig
from kernel.commands import Command, JobExecuteResult, RunClaimPending, RunClaimPendingResult
from kernel.convert import command_fingerprint, converter, to_json
from kernel.decisions import idempotency
from kernel.decisions.context import IDEMPOTENCY_TIMEOUT as IDEMPOTENCY_TIMEOUT
from kernel.decisions.context import MAX_DELIVERY_ATTEMPTS, Env, Settings, utc_only
from kernel.effects import Decision, ReleaseIdempotency, StoreEffect
from kernel.errors import DefinitionError, StaleVersionError
from kernel.llm_batch import check_batch_providers
from kernel.ports import (
    BatchProvider,
    Clock,
    EventSink,
    IdGenerator,
    OffloadingRunner,
    StageRunner,
    Store,
    WorkflowRegistry,
)
from kernel.records import IdempotencyRecord, Job
from kernel.shell.job_groups import GroupSizer, JobLoop
from kernel.shell.outside import Outside
from kernel.shell.reads import Reads
from kernel.shell.steps import Done, Phase, Resumable, Step, Within, single
from kernel.shell.table import TABLE
from kernel.stages import Stage

R = TypeVar("R")

Finalize = Callable[[R], Sequence[StoreEffect]]
"""Extra effects for a command's last transaction, given its result (idempotency)."""

MAX_STALE_RETRIES = 8
"""How often the shell re-loads and re-decides after a ``StaleVersionError``."""


@runtime_checkable
class RetryingSink(Protocol):
    """A sink that says how many failed deliveries of an event it allows."""

    max_retries: int


def _nothing(_: object) -> Sequence[StoreEffect]:
    return ()


class Kernel:
    """Dispatches commands: ``kernel.dispatch(RunCreate(...))`` returns ``RunCreateResult``.

    Every port is passed in explicitly; ``adapters.create_kernel`` and
    ``testing.create_test_kernel`` wire the usual ones.
    """

    def __init__(
        self,
        *,
        registry: WorkflowRegistry,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        sink: EventSink,
        runner: StageRunner,
        idempotency_timeout: timedelta = IDEMPOTENCY_TIMEOUT,
        zone_of: Callable[[str], tzinfo | None] = utc_only,
        ai: AIConfig | None = None,
        batch_providers: Sequence[BatchProvider] = (),
    ) -> None:
        """``zone_of`` resolves schedules' time-zone names (``None``: unknown); the
        default knows only ``"UTC"``, ``adapters.create_kernel`` passes the system's
        time-zone database. ``ai`` configures ``ctx.ai`` (without it, its methods
        raise ``AINotConfiguredError``); ``batch_providers`` are the providers LLM
        batch stages name.

        Raises:
            TypeError: ``ai`` is not an ``AIConfig``.
            DefinitionError: two batch providers share a name, or an LLM batch
                stage names a provider that is not among them.
        """
        if ai is not None and not isinstance(ai, AIConfig):
            raise TypeError(f"ai: expected an AIConfig(providers=..., prices=...), got {ai!r}")
        self.ai_config = ai
        self.batch_providers: Mapping[str, BatchProvider] = _by_name(batch_providers)
        check_batch_providers(_stages_of(registry), self.batch_providers)
        self.registry = registry
        self.store = store
        self.clock = clock
        self.ids = ids
        self.sink = sink
        self.runner = runner
        attempts = sink.max_retries if isinstance(sink, RetryingSink) else MAX_DELIVERY_ATTEMPTS
        self._settings = Settings(
            max_delivery_attempts=attempts,
            idempotency_timeout=idempotency_timeout,
            zone_of=zone_of,
        )
        self._outside = Outside(**self._outside_ports(runner))

    def _outside_ports(self, runner: StageRunner) -> dict[str, Any]:
        """What :class:`Outside` is built with, stage code run by ``runner`` (a kernel
        that wraps the runner, like ``adapters.otel``'s, passes its own)."""
        return {
            "registry": self.registry,
            "store": self.store,
            "clock": self.clock,
            "ids": self.ids,
            "sink": self.sink,
            "runner": runner,
            "dispatch": self.dispatch,
            "ai": self.ai_config,
            "batch_providers": self.batch_providers,
            # The kernel's own runner offloads: a wrapping runner need not.
            "offload": self.runner.offload if isinstance(self.runner, OffloadingRunner) else None,
        }

    @property
    def idempotency_timeout(self) -> timedelta:
        """How old an IN_PROGRESS idempotency key must be before a caller may take it over."""
        return self._settings.idempotency_timeout

    # -- public ----------------------------------------------------------------

    def dispatch(self, cmd: Command[R]) -> R:
        """Run one command and return its typed result.

        Raises:
            KernelError: a subclass naming what was wrong; nothing was written.
            TypeError: ``cmd`` is not a command.
        """
        found = TABLE.find(cmd)
        key = getattr(cmd, "idempotency_key", None)
        if key is None:
            return self._drive(found.begin(cmd), _nothing)
        return self._idempotent(
            cmd, key, found.result, lambda finalize: self._drive(found.begin(cmd), finalize)
        )

    def execute_next_job(
        self, worker_id: str, on_start: Callable[[Job], None] | None = None
    ) -> tuple[Job, JobExecuteResult] | None:
        """Lease the next available job and execute it, the lease taken in the
        start transaction (one write transaction fewer than dequeue + ``job.execute``).

        ``on_start(job)`` is called after the start transaction commits and
        before user code runs: hosts use it to learn which job to keep leased
        while the stage runs. If it raises, the exception propagates, no user
        code runs, and the job stays leased (the caller or the reaper releases it).

        Returns ``None`` when no job is available.
        """
        done = self.execute_jobs(worker_id, 1, on_start)
        return done[0] if done else None

    def execute_jobs(
        self,
        worker_id: str,
        max_jobs: int = 100,
        on_start: Callable[[Job], None] | None = None,
        *,
        on_finish: Callable[[Job, JobExecuteResult], None] | None = None,
        keep_going: Callable[[], bool] | None = None,
        claim_first: RunClaimPending | None = None,
        on_claimed: Callable[[RunClaimPendingResult], None] | None = None,
        groups: GroupSizer | None = None,
    ) -> list[tuple[Job, JobExecuteResult]]:
        """Execute available jobs one after another, up to ``max_jobs``.

        Each finish transaction also leases and starts the next job, so a busy
        worker commits one write transaction per stage execution. Returns the
        jobs executed (or settled without running), in order; empty when idle.

        Args:
            on_start: called with each job after its start commits, before its
                user code runs (hosts renew that job's lease).
            on_finish: called with each job and its result after the result commits.
            keep_going: asked inside each finish transaction before the next job
                is leased; ``False`` ends the chain there (a host that is stopping).
                A finish retried after a version conflict asks again. The first
                lease of a call is not asked about: do not call when stopping.
            claim_first: ``run.claimPending`` in the transaction that leases the
                first job, before the lease: a worker told of a new run claims it
                and starts its first stage in one transaction.
            on_claimed: called with that claim's result once it has committed.
            groups: lease, run and finish several jobs per transaction, as many as
                this sizer says (``kernel.shell.job_groups``; one sizer per slot,
                kept across calls so that it remembers how quick the stages are).
                ``None``: one job per transaction. Within a group, ``on_start`` is
                called as each job's code starts, and ``on_finish`` once the
                group's finishes commit: first for the jobs settled without
                running, then for those that ran, in order.
        """
        if isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1:
            raise ValueError(f"max_jobs: expected an int >= 1, got {max_jobs!r}")
        if groups is not None and not isinstance(groups, GroupSizer):
            raise TypeError(f"groups: expected a GroupSizer or None, got {groups!r}")
        loop = JobLoop(
            drive=self._drive_only,
            world=self._outside,
            clock=self.clock,
            worker_id=worker_id,
            max_jobs=max_jobs,
            on_start=on_start,
            on_finish=on_finish,
            keep_going=keep_going,
            sizer=groups or GroupSizer(1),
        )
        return loop.run(claim_first, on_claimed)

    # -- the loop ----------------------------------------------------------------

    def _drive_only(self, phase: Phase[R]) -> R:
        return self._drive(phase, _nothing)

    def _drive(self, phase: Phase[R], finalize: Finalize[R]) -> R:
        """Run phases until one is done; work between them runs outside any transaction."""
        while True:
            step = self._transact(phase, finalize)
            if isinstance(step, Done):
                return step.result
            phase = step.resume(self._outside)

    def _transact(self, phase: Phase[R], finalize: Finalize[R]) -> Done[R] | Resumable[R]:
        """Load and decide inside one transaction and apply the effects there.

        A ``StaleVersionError`` rolls the transaction back; the phase is loaded and
        decided again, up to ``MAX_STALE_RETRIES`` times. ``finalize``'s effects
        join the transaction that finishes the command.
        """
        for attempt in range(MAX_STALE_RETRIES):
            try:
                with self.store.transaction() as tx:
                    current = phase
                    while True:
                        # The time is read once the write lock is held, so events of
                        # one run carry timestamps in their sequence order.
                        env = self._env()
                        match current.run(Reads(tx, self.registry, env.now), env):
                            case Failure(error):
                                raise error
                            case Success(decided):
                                decision: Decision[Step[R]] = decided
                        step = decision.result
                        if isinstance(step, Within):
                            tx.apply(decision.effects)
                            current = step.then
                            continue
                        extra = finalize(step.result) if isinstance(step, Done) else ()
                        tx.apply((*decision.effects, *extra))
                        return step
            except StaleVersionError:
                if attempt == MAX_STALE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _env(self) -> Env:
        """Time, ids, a causation id and the settings, for one decision."""
        return Env(
            now=self.clock.now(),
            new_id=self.ids.new_id,
            causation_id=self.ids.new_id(),
            settings=self._settings,
        )

    # -- idempotency keys ----------------------------------------------------------

    def _idempotent(
        self,
        cmd: Command[R],
        key: str,
        result_type: type[R],
        run: Callable[[Finalize[R]], R],
    ) -> R:
        # The payload digest leaves the key out: the key names the request, the
        # rest of the payload is what must match on a replay.
        claim = IdempotencyRecord(
            key=key,
            command_type=cmd.type,
            state="IN_PROGRESS",
            fingerprint=command_fingerprint(cmd),
            created_at=self.clock.now(),
        )
        verdict = self._drive(_claim_key(claim), _nothing)
        if isinstance(verdict, idempotency.Replay):
            cached: R = converter.structure(verdict.result, result_type)
            return cached
        try:
            return run(lambda result: idempotency.complete(claim, to_json(result)))
        except BaseException:
            # A command that failed releases its key (SPEC §6.3).
            with self.store.transaction() as tx:
                tx.apply((ReleaseIdempotency(key, cmd.type),))
            raise


def _stages_of(registry: WorkflowRegistry) -> list[Stage[Any, Any, Any]]:
    """Every stage of every registered workflow version."""
    workflows = [registry.get_workflow(*pair) for pair in registry.workflow_versions()]
    return [stage for workflow in workflows if workflow is not None for stage in workflow.stages]


def _by_name(providers: Sequence[BatchProvider]) -> Mapping[str, BatchProvider]:
    found: dict[str, BatchProvider] = {}
    for provider in providers:
        name = getattr(provider, "name", None)
        if not isinstance(name, str) or not name:
            raise DefinitionError(
                f"batch_providers: each provider needs a non-empty name, got {name!r} "
                f"on {provider!r}"
            )
        if name in found:
            raise DefinitionError(f"batch_providers: two providers are named {name!r}")
        found[name] = provider
    return found


def _claim_key(claim: IdempotencyRecord) -> Phase[idempotency.KeyVerdict]:
    """Take the key (the store inserts ``claim`` unless a row exists), then decide."""
    return single(
        lambda reads: reads.tx.acquire_idempotency(claim),
        lambda existing, env: idempotency.decide_claim(
            claim, existing, env.settings.idempotency_timeout
        ),
    )
