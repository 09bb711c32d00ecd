import { createHash } from 'node:crypto';
import { join, resolve, sep } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';

/** The environment the config module reads; tests pass their own. */
export type Env = Record<string, string | undefined>;

/** The only place that reads `process.env`. */
export function processEnv(): Env {
  return process.env;
}

/** Builds a child-process environment from this process's environment plus overrides. */
export function childEnv(overrides: Env = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...overrides })) if (v !== undefined) out[k] = v;
  return out;
}

/** PATH, HOME and LANG of this process, and nothing else: for tools (git, tar) run on its behalf. */
export function toolEnv(extra: Env = {}): Record<string, string> {
  const out: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    LANG: 'C.UTF-8',
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
  return out;
}

/** The entries of a comma-separated setting, trimmed, empty ones dropped. */
export function commaList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

/** Parses `env` with `schema`, turning the first problem into one clear line. */
export function parseEnv<T extends z.ZodTypeAny>(schema: T, env: Env): z.infer<T> {
  const cleaned: Env = {};
  for (const [k, v] of Object.entries(env)) cleaned[k] = v === '' ? undefined : v;
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const key = issue.path.join('.') || 'configuration';
  const got = cleaned[String(issue.path[0])];
  throw new ConfigError(`Invalid setting ${key}: ${issue.message}${got === undefined ? ' (not set)' : ` (got "${got}")`}`);
}

/** `AMEIDE_HOME`: where embedded state lives, `.ameide/` under the working directory by default. */
export function ameideHome(env: Env): string {
  return resolve(env.AMEIDE_HOME || '.ameide');
}

/**
 * The default workspace of a worker whose state lives in `stateDir`: `<stateDir>/workspaces`, unless
 * a component of that path starts with "." (as `.ameide` does); then a plain directory of its own
 * under /var/tmp, so that commands run without a sandbox never work in a dot-directory (test suites
 * and static-file servers refuse such paths).
 */
export function defaultWorkspaceDir(stateDir: string): string {
  const dir = join(resolve(stateDir), 'workspaces');
  if (!dir.split(sep).some((c) => c.startsWith('.'))) return dir;
  return join('/var/tmp', `ameide-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`, 'workspaces');
}

export const port = z.coerce.number().int().min(0).max(65535);
export const url = (protocols: string[]) =>
  z.string().refine(
    (s) => {
      try {
        return protocols.includes(new URL(s).protocol);
      } catch {
        return false;
      }
    },
    `must be a ${protocols.map((p) => p + '//').join(' or ')} URL`,
  );
export const hostPort = z.string().regex(/^[^\s:/]+:\d+$/, 'must be host:port, e.g. localhost:7233');
