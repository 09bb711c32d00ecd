import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ameideHome, parseEnv, processEnv, url, type Env } from './env.js';
import { temporalSchema, toTemporalConfig, type TemporalConfig } from './temporal.js';

/** Settings of the Temporal worker (`services/workflows-runtime`). */
export interface WorkerConfig {
  apiUrl: string;
  serviceToken: string;
  temporal: TemporalConfig;
  workspaceDir: string;
  artifactStoreUrl: string;
  /** The PATH handed to commands the worker runs. */
  commandPath: string;
  /** The HOME handed to commands the worker runs. */
  commandHome: string;
  home: string;
}

const schema = z
  .object({
    AMEIDE_API_URL: url(['http:', 'https:']).default('http://127.0.0.1:8080'),
    AMEIDE_SERVICE_TOKEN: z.string().min(16, 'must be the worker service credential (16+ characters)'),
    AMEIDE_WORKSPACE_DIR: z.string().optional(),
    ARTIFACT_STORE_URL: url(['file:']).optional(),
    PATH: z.string().default('/usr/local/bin:/usr/bin:/bin'),
    HOME: z.string().default('/tmp'),
  })
  .extend(temporalSchema.shape);

/** Reads and validates the worker settings; throws ConfigError with one line on a wrong setting. */
export function loadWorkerConfig(env: Env = processEnv()): WorkerConfig {
  const e = parseEnv(schema, env);
  const home = ameideHome(env);
  return {
    apiUrl: e.AMEIDE_API_URL,
    serviceToken: e.AMEIDE_SERVICE_TOKEN,
    temporal: toTemporalConfig(e),
    workspaceDir: resolve(e.AMEIDE_WORKSPACE_DIR ?? join(home, 'workspaces')),
    artifactStoreUrl: e.ARTIFACT_STORE_URL ?? `file://${join(home, 'artifacts')}`,
    commandPath: e.PATH,
    commandHome: e.HOME,
    home,
  };
}
