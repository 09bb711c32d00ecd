import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { ameideHome, parseEnv, processEnv, url, type Env } from './env.js';

/** Settings of the `ameide` CLI. */
export interface CliConfig {
  apiUrl: string;
  token: string;
}

/** Where a running development stack writes its URLs and credentials. */
export function stackInfoPath(env: Env = processEnv()): string {
  return join(ameideHome(env), 'stack', 'stack.json');
}

const schema = z.object({
  AMEIDE_API_URL: url(['http:', 'https:']).optional(),
  AMEIDE_TOKEN: z.string().optional(),
});

/**
 * Reads the CLI settings. Without AMEIDE_API_URL / AMEIDE_TOKEN it falls back to the development stack
 * started by `make up`, so `pnpm ameide …` works right after it.
 */
export function loadCliConfig(env: Env = processEnv()): CliConfig {
  const e = parseEnv(schema, env);
  let apiUrl = e.AMEIDE_API_URL;
  let token = e.AMEIDE_TOKEN;
  const info = stackInfoPath(env);
  if ((!apiUrl || !token) && existsSync(info)) {
    const stack = JSON.parse(readFileSync(info, 'utf8')) as { apiUrl?: string; devToken?: string };
    apiUrl ??= stack.apiUrl;
    token ??= stack.devToken;
  }
  if (!token) throw new ConfigError('Invalid setting AMEIDE_TOKEN: not set (run `make up` or export a bearer token)');
  return { apiUrl: apiUrl ?? 'http://127.0.0.1:8080', token };
}

/**
 * Whether the CLI colours its output: only on a terminal (`isTty`, the caller's stdout), and never
 * when NO_COLOR is set to anything but the empty string (https://no-color.org).
 */
export function cliColor(isTty: boolean, env: Env = processEnv()): boolean {
  return isTty && !env.NO_COLOR;
}
