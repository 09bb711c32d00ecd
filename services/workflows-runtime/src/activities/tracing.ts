import { context, propagation } from '@opentelemetry/api';

/** The W3C traceparent of the current span (the activity's, under the run's trace); undefined when none. */
export function currentTraceparent(): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier['traceparent'];
}
