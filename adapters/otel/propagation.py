"""The W3C trace context of a run, kept in its ``metadata``.

At ``run.create`` the context of the current span is written under
:data:`TRACEPARENT_KEY` (and :data:`TRACESTATE_KEY` when there is a trace
state); a worker that runs a stage of the run, in any process, reads it back
and starts the stage's span as a child of it. The W3C format is used whatever
propagator the application installed globally: the keys name it.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.trace import get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kernel.records import Json

TRACEPARENT_KEY = "otel.traceparent"
"""The run metadata key of the creating span's W3C ``traceparent``."""

TRACESTATE_KEY = "otel.tracestate"
"""The run metadata key of the creating span's W3C ``tracestate`` (only when not empty)."""

_W3C = TraceContextTextMapPropagator()
_HEADERS = {"traceparent": TRACEPARENT_KEY, "tracestate": TRACESTATE_KEY}


def trace_keys(metadata: Mapping[str, Json]) -> dict[str, str]:
    """The trace context entries of ``metadata`` (string values only).

    >>> trace_keys({"otel.traceparent": "00-ab-cd-01", "tenant": "acme"})
    {'otel.traceparent': '00-ab-cd-01'}
    """
    return {key: value for key in _HEADERS.values() if isinstance(value := metadata.get(key), str)}


def current_trace_keys(context: Context | None = None) -> dict[str, str]:
    """The metadata entries for the current span (or the span in ``context``);
    empty when there is no valid span."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=context)
    return {_HEADERS[name]: value for name, value in carrier.items() if name in _HEADERS}


def with_trace_context(
    metadata: Mapping[str, Json] | None, context: Context | None = None
) -> dict[str, Json] | None:
    """``metadata`` with the current trace context added; trace keys the caller set
    are kept (a service without OpenTelemetry may pass on a ``traceparent`` header
    it received). ``metadata`` itself when there is nothing to add."""
    present = trace_keys(metadata or {})
    if TRACEPARENT_KEY in present:
        return dict(metadata) if metadata is not None else None
    added = current_trace_keys(context)
    if not added:
        return dict(metadata) if metadata is not None else None
    return {**(metadata or {}), **added}


def run_context(metadata: Mapping[str, Json]) -> Context | None:
    """The context to start a run's stage spans in: its stored trace as the parent;
    ``None`` when the run has none (or a malformed one)."""
    keys = trace_keys(metadata)
    carrier = {name: keys[key] for name, key in _HEADERS.items() if key in keys}
    if "traceparent" not in carrier:
        return None
    context = _W3C.extract(carrier)
    return context if get_current_span(context).get_span_context().is_valid else None
