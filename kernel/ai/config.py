"""``AIConfig``: the providers and prices a kernel's ``ctx.ai`` uses (SPEC §11)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import field, frozen

from kernel.ai.ports import AIProvider
from kernel.ai.prices import PriceTable


def _providers(value: Sequence[AIProvider]) -> tuple[AIProvider, ...]:
    return tuple(value)


def _check_providers(instance: object, attribute: Any, value: tuple[AIProvider, ...]) -> None:
    seen: set[str] = set()
    for provider in value:
        name = getattr(provider, "name", None)
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(
                f"providers: each provider needs a name without ':' (the model prefix), "
                f"got {name!r} on {provider!r}"
            )
        if name in seen:
            raise ValueError(f"providers: two providers are named {name!r}")
        seen.add(name)


def _check_repairs(instance: object, attribute: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"repair_attempts must be an int >= 0, got {value!r}")


@frozen
class AIConfig:
    """What ``ctx.ai`` calls and what each call costs.

    ``repair_attempts`` is how many more tries ``generate_object`` makes after
    an answer that is not valid JSON for the output type.
    """

    providers: tuple[AIProvider, ...] = field(converter=_providers, validator=_check_providers)
    prices: PriceTable = field(factory=PriceTable)
    repair_attempts: int = field(default=1, kw_only=True, validator=_check_repairs)

    @property
    def by_name(self) -> Mapping[str, AIProvider]:
        """The providers by name."""
        return {provider.name: provider for provider in self.providers}


__all__ = ["AIConfig"]
