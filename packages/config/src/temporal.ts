import { z } from 'zod';
import { hostPort } from './env.js';

/** Temporal connection settings shared by the service and the worker. */
export const temporalSchema = z.object({
  TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('coding-agent'),
});

export interface TemporalConfig {
  address: string;
  namespace: string;
  taskQueue: string;
}

export function toTemporalConfig(e: z.infer<typeof temporalSchema>): TemporalConfig {
  return { address: e.TEMPORAL_ADDRESS, namespace: e.TEMPORAL_NAMESPACE, taskQueue: e.TEMPORAL_TASK_QUEUE };
}
