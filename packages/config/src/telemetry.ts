import { processEnv, type Env } from './env.js';

/** OpenTelemetry settings: exporting is on when the standard OTLP endpoint variables are set. */
export interface TelemetryConfig {
  serviceName: string;
  otlpEnabled: boolean;
}

export function loadTelemetryConfig(serviceName: string, env: Env = processEnv()): TelemetryConfig {
  const otlpEnabled = env.OTEL_SDK_DISABLED !== 'true' && Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  return { serviceName: env.OTEL_SERVICE_NAME || serviceName, otlpEnabled };
}
