import { processEnv, type Env } from './env.js';

/** OpenTelemetry settings: exporting is on when the standard OTLP endpoint variables are set. */
export interface TelemetryConfig {
  serviceName: string;
  otlpEnabled: boolean;
  /** Where OTLP/HTTP traces go (the traces endpoint, or `<endpoint>/v1/traces`); undefined when not exporting. */
  otlpTracesUrl?: string;
}

export function loadTelemetryConfig(serviceName: string, env: Env = processEnv()): TelemetryConfig {
  const otlpEnabled = env.OTEL_SDK_DISABLED !== 'true' && Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/+$/, '');
  const otlpTracesUrl = !otlpEnabled ? undefined : env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || `${base}/v1/traces`;
  return { serviceName: env.OTEL_SERVICE_NAME || serviceName, otlpEnabled, ...(otlpTracesUrl ? { otlpTracesUrl } : {}) };
}
