"""Idempotency keys (SPEC §6.3): what a command carrying a key does, given the key's row."""

from __future__ import annotations

from datetime import timedelta

from attrs import frozen
from returns.result import Failure, Result, Success

from kernel.copying import evolve
from kernel.effects import CompleteIdempotency, Decision, StoreEffect
from kernel.errors import IdempotencyConflictError, IdempotencyInProgressError, KernelError
from kernel.records import IdempotencyRecord, Json


@frozen
class Proceed:
    """This caller holds the key: run the command."""


@frozen
class Replay:
    """The command completed before with the same payload: return its cached result."""

    result: Json


KeyVerdict = Proceed | Replay


def decide_claim(
    claim: IdempotencyRecord, existing: IdempotencyRecord | None, timeout: timedelta
) -> Result[Decision[KeyVerdict], KernelError]:
    """Decide what a command with ``claim``'s key does, given the row already there.

    No row: the store inserted ``claim``, so this caller holds the key. A row
    with another payload is a conflict; a completed one is replayed; one still
    in progress is refused, unless it is older than ``timeout``: its holder
    died mid-command (a finished or failed command completes or releases its
    key), so this caller takes it over. Stores lock the row while the
    transaction reads it, so only one caller can take it.
    """
    if existing is None:
        return Success(Decision(Proceed()))
    if existing.fingerprint != claim.fingerprint:
        return Failure(IdempotencyConflictError(claim.key, claim.command_type))
    if existing.state == "COMPLETED":
        return Success(Decision(Replay(existing.result)))
    if existing.created_at <= claim.created_at - timeout:
        return Success(Decision(Proceed(), (CompleteIdempotency(claim),)))
    return Failure(IdempotencyInProgressError(claim.key, claim.command_type))


def complete(claim: IdempotencyRecord, result: Json) -> tuple[StoreEffect, ...]:
    """The effect that marks the key completed with the command's result (JSON form),
    applied in the command's last transaction."""
    return (CompleteIdempotency(evolve(claim, state="COMPLETED", result=result)),)
