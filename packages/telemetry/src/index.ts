import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { loadTelemetryConfig } from '@ameide/config';

/** A started OpenTelemetry SDK and the span exporter it uses (undefined when OTLP is not configured). */
export interface Telemetry {
  exporter?: OTLPTraceExporter;
  shutdown(): Promise<void>;
}

/**
 * Initialises the OpenTelemetry SDK for one process. Spans go to OTLP when the standard
 * OTEL_EXPORTER_OTLP_* variables are set; otherwise the SDK runs with no exporter, so context still
 * propagates (Temporal interceptors, Connect) but nothing is sent.
 */
export function initTelemetry(serviceName: string): Telemetry {
  const cfg = loadTelemetryConfig(serviceName);
  const exporter = cfg.otlpEnabled ? new OTLPTraceExporter() : undefined;
  const sdk = new NodeSDK({
    serviceName: cfg.serviceName,
    traceExporter: exporter,
    spanProcessors: exporter ? undefined : [],
    instrumentations: [],
  });
  sdk.start();
  return { exporter, shutdown: () => sdk.shutdown() };
}
