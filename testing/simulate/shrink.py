"""Replaying a schedule, and shrinking a failing one: delete chunks of steps, whole
runs, schedules, workers and kinds of fault, while the same invariant still breaks."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from testing.simulate.results import key_of
from testing.simulate.scheduler import do, drive
from testing.simulate.violation import Violation
from testing.simulate.world import START, Setup, World


def replay_lines(
    setup: Setup, lines: Sequence[str], done: list[str], until: datetime | None = None
) -> None:
    """Carry out ``lines`` (skipping those that cannot happen), then the liveness phase,
    into ``done``; ``until``: stop once the clock passes it."""
    world = World(setup)
    for line in lines:
        seconds, key = key_of(line)
        when, before = START + timedelta(seconds=seconds), world.clock.now()
        if world.healed_at is not None:
            # Healed workers are never idle for long: a schedule whose steps were
            # deleted does not make time jump further than the scheduler would.
            due = before if world.choices() else (world.due() or before)
            when = min(when, max(due, before) + timedelta(milliseconds=world.timing.step_cost_ms))
        if when > before:
            world.clock.set(when)
        for name in _workers_named(key):
            world.worker(name)
        if not do(world, done, key):
            world.clock.set(before)  # a step that cannot happen takes no time either
    drive(world, random.Random(0), None, [], done, steps=len(done), until=until)


def _at(line: str) -> datetime:
    return START + timedelta(seconds=key_of(line)[0])


def _workers_named(key: str) -> list[str]:
    """The worker a ``wN start`` key starts (a worker exists once a line starts it)."""
    words = key.split(" ")
    if len(words) == 2 and words[1] == "start" and words[0][:1] == "w" and words[0][1:].isdigit():
        return [words[0]]
    return []


def _until_heal(lines: list[str]) -> list[str]:
    """The lines up to the one that stopped the faults, included."""
    for index, line in enumerate(lines):
        if key_of(line)[1].split(" ")[0] == "heal":
            return lines[: index + 1]
    return lines


def _kind(invariant: str) -> str:
    return invariant.split(": ", 1)[0]


def shrink(
    setup: Setup, trace: list[str], invariant: str, seconds: float
) -> tuple[list[str], str | None]:
    """Delete chunks of steps, then whole runs, workers and kinds of fault, while the
    same invariant still breaks, until nothing changes or ``seconds`` ran out.
    Returns the shrunk schedule and the message it breaks the invariant with; ``None``:
    the full schedule itself did not break it again (nothing is shrunk)."""
    deadline = time.monotonic() + seconds
    liveness = _kind(invariant) == "liveness"
    # A candidate that has not failed a while after the full schedule did is taken
    # to pass: shrinking need not wait for the end of every liveness phase.
    until = None if liveness else _at(trace[-1]) + setup.timing.stale_threshold

    broke: list[str] = []

    def still_fails(lines: list[str]) -> list[str] | None:
        done: list[str] = []
        try:
            replay_lines(setup, lines, done, until)
        except Violation as violation:
            if _kind(str(violation)) != _kind(invariant):
                return None
            broke[:] = [str(violation)]
            # A liveness failure's schedule ends where the faults stop: the rest is
            # what the replay's own fair scheduler does.
            return _until_heal(done) if liveness else done
        return None

    if still_fails(list(trace)) is None:
        return list(trace), None
    best = (still_fails(_until_heal(trace)) if liveness else None) or list(trace)
    while time.monotonic() < deadline:
        size = len(best)
        best = _drop_groups(_delete_chunks(best, still_fails, deadline), still_fails, deadline)
        if len(best) == size:
            break
    still_fails(best)  # the message of the shrunk schedule itself (it names its runs)
    return best, broke[0]


def _delete_chunks(
    best: list[str], still_fails: Callable[[list[str]], list[str] | None], deadline: float
) -> list[str]:
    """Delete chunks of steps, halving the chunk, while the same invariant still breaks."""
    chunk = max(len(best) // 2, 1)
    while time.monotonic() < deadline:
        start, changed = 0, False
        while start < len(best) and time.monotonic() < deadline:
            found = still_fails(best[:start] + best[start + chunk :])
            if found is not None and len(found) < len(best):
                best, changed = found, True
            else:
                start += chunk
        if chunk == 1 and not changed:
            break
        chunk = max(chunk // 2, 1) if not changed else chunk
    return best


def _drop_groups(
    best: list[str], still_fails: Callable[[list[str]], list[str] | None], deadline: float
) -> list[str]:
    """Delete every step of one run, one worker or one kind of fault at once, while the
    same invariant still breaks."""
    changed = True
    while changed and time.monotonic() < deadline:
        changed = False
        for pattern in _groups(best):
            kept = [line for line in best if not re.search(pattern, key_of(line)[1])]
            if len(kept) == len(best) or time.monotonic() >= deadline:
                continue
            found = still_fails(kept)
            if found is not None and len(found) < len(best):
                best, changed = found, True
                break
    return best


def _groups(lines: list[str]) -> list[str]:
    """Patterns of keys: each run (``r3``), each schedule with its runs, each worker's
    own steps, each kind of fault."""
    keys = [key_of(line)[1] for line in lines]
    runs = sorted(
        {m for key in keys for m in re.findall(r"\br\d+\b", key)}, key=lambda r: int(r[1:])
    )
    schedules = sorted({key.split(" ")[2] for key in keys if key.startswith("client schedule ")})
    workers = sorted({key.split("/")[0].split(" ")[0] for key in keys if re.match(r"w\d+", key)})
    faults = sorted({key.split(" ")[1] for key in keys if key.startswith("fault ")})
    return [
        *(rf"\b{run}\b" for run in runs),
        *(rf"(^client (un)?schedule {re.escape(s)}$|{re.escape(s)}@)" for s in schedules),
        *(rf"^{worker}[/ ]" for worker in workers),
        *(rf"^fault {kind} " for kind in faults),
    ]
