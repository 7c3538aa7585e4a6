"""OpenTelemetry traces and metrics for a kernel (optional extra ``otel``).

Opt in with ``create_kernel(..., telemetry=Telemetry(...))``: the kernel then
opens a span per command dispatch and per stage attempt, carries the trace of
the code that created a run to the workers that run its stages (through the
run's ``metadata``), and records stage counters, a duration histogram and the
queue depth. Without ``telemetry`` nothing here is imported. See
``docs/observability.md``.

- :mod:`.telemetry`: :class:`Telemetry`, the tracer, meter and instruments.
- :mod:`.propagation`: the W3C trace context in a run's metadata.
- :mod:`.kernel`: :class:`InstrumentedKernel`, dispatch spans.
- :mod:`.stages`: stage attempt spans and stage metrics.
"""

try:
    import opentelemetry.metrics
    import opentelemetry.trace  # noqa: F401
except ImportError as missing:
    raise ImportError(
        "adapters.otel needs the OpenTelemetry API, which is not installed: "
        "pip install 'workflow-kernel[otel]'"
    ) from missing

from adapters.otel.kernel import InstrumentedKernel
from adapters.otel.propagation import TRACEPARENT_KEY, TRACESTATE_KEY
from adapters.otel.telemetry import TICK_COMMANDS, Telemetry

__all__ = ["TICK_COMMANDS", "TRACEPARENT_KEY", "TRACESTATE_KEY", "InstrumentedKernel", "Telemetry"]
