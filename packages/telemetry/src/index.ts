import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { loadTelemetryConfig } from '@ameide/config';

/** A started OpenTelemetry SDK, with its exporter when OTLP export is configured. */
export interface Telemetry {
  /** The OTLP span exporter; undefined when no OTEL_EXPORTER_OTLP_* endpoint is set. */
  exporter?: OTLPTraceExporter;
  resource: Resource;
  shutdown(): Promise<void>;
}

/**
 * Initialises the OpenTelemetry SDK for one process. Spans go to OTLP/HTTP when the standard
 * OTEL_EXPORTER_OTLP_* variables are set; otherwise the SDK runs with no exporter, so context still
 * propagates (Temporal interceptors) but nothing is sent.
 */
export function initTelemetry(serviceName: string): Telemetry {
  const cfg = loadTelemetryConfig(serviceName);
  const exporter = cfg.otlpEnabled ? new OTLPTraceExporter() : undefined;
  const resource = new Resource({ 'service.name': cfg.serviceName });
  const sdk = new NodeSDK({
    resource,
    traceExporter: exporter,
    spanProcessors: exporter ? undefined : [],
    instrumentations: [],
  });
  sdk.start();
  return { exporter, resource, shutdown: () => sdk.shutdown() };
}
