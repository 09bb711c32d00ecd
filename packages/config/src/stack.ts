import { join } from 'node:path';
import { z } from 'zod';
import { ameideHome, commaList, hostPort, parseEnv, port, processEnv, url, type Env } from './env.js';

/**
 * Settings of the embedded development stack (`make up`, `make demo`, tests). Every embedded part is
 * replaced by configuration alone: DATABASE_URL, TEMPORAL_ADDRESS, ARTIFACT_STORE_URL.
 */
export interface StackConfig {
  home: string;
  databaseUrl?: string;
  temporalAddress?: string;
  temporalNamespace: string;
  artifactStoreUrl?: string;
  temporalCli?: string;
  apiPort: number;
  postgresPort: number;
  temporalPort: number;
  temporalUiPort: number;
  /** The service's preview router (0: none). */
  previewPort: number;
  /** Read-only path prefixes the stack's operator policy allows besides the example agents. */
  sandboxReadOnlyPaths: string[];
  path: string;
}

const schema = z.object({
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  TEMPORAL_ADDRESS: hostPort.optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  ARTIFACT_STORE_URL: url(['file:', 's3:']).optional(),
  TEMPORAL_CLI: z.string().optional(),
  AMEIDE_API_PORT: port.default(8080),
  AMEIDE_POSTGRES_PORT: port.default(54329),
  AMEIDE_TEMPORAL_PORT: port.default(7233),
  AMEIDE_TEMPORAL_UI_PORT: port.default(8233),
  AMEIDE_PREVIEW_PORT: port.default(8090),
  AMEIDE_SANDBOX_READ_ONLY_PATHS: z.string().optional(),
  PATH: z.string().default('/usr/local/bin:/usr/bin:/bin'),
});

export function loadStackConfig(env: Env = processEnv()): StackConfig {
  const e = parseEnv(schema, env);
  return {
    home: ameideHome(env),
    databaseUrl: e.DATABASE_URL,
    temporalAddress: e.TEMPORAL_ADDRESS,
    temporalNamespace: e.TEMPORAL_NAMESPACE,
    artifactStoreUrl: e.ARTIFACT_STORE_URL,
    temporalCli: e.TEMPORAL_CLI,
    apiPort: e.AMEIDE_API_PORT,
    postgresPort: e.AMEIDE_POSTGRES_PORT,
    temporalPort: e.AMEIDE_TEMPORAL_PORT,
    temporalUiPort: e.AMEIDE_TEMPORAL_UI_PORT,
    previewPort: e.AMEIDE_PREVIEW_PORT,
    sandboxReadOnlyPaths: commaList(e.AMEIDE_SANDBOX_READ_ONLY_PATHS),
    path: e.PATH,
  };
}

/** Where a stack keeps its data: `<home>/<name>/`. */
export function stackDir(cfg: Pick<StackConfig, 'home'>, name: string): string {
  return join(cfg.home, name);
}
