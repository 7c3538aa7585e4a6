"""JSON Lines, as the batch APIs read and write them (one JSON object a line)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from kernel import ProviderError


def encode_jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """One compact JSON object per line, each line ending with a newline.

    >>> encode_jsonl([{"custom_id": "a", "n": 1}, {"custom_id": "b"}])
    b'{"custom_id":"a","n":1}\\n{"custom_id":"b"}\\n'
    """
    lines = (json.dumps(dict(row), separators=(",", ":"), ensure_ascii=False) for row in rows)
    return "".join(line + "\n" for line in lines).encode()


def decode_jsonl(text: str, *, provider: str, what: str) -> list[dict[str, Any]]:
    """The objects of a JSON Lines file (blank lines skipped).

    Raises:
        ProviderError: a line is not a JSON object (not retryable: the file will
            not change), naming the provider, the file and the line number.

    >>> decode_jsonl('{"a": 1}\\n\\n{"b": 2}\\n', provider="openai", what="output file")
    [{'a': 1}, {'b': 2}]
    """
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise ProviderError(
                f"{provider}: line {number} of the {what} is not JSON: {error}", retryable=False
            ) from error
        if not isinstance(row, dict):
            raise ProviderError(
                f"{provider}: line {number} of the {what} is not a JSON object: {line[:80]!r}",
                retryable=False,
            )
        rows.append(row)
    return rows


__all__ = ["decode_jsonl", "encode_jsonl"]
