import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { ameideHome, parseEnv, processEnv, url, type Env } from './env.js';

/** Settings of the `ameide` CLI. */
export interface CliConfig {
  apiUrl: string;
  token: string;
  /** Where the token came from, for error hints: `AMEIDE_TOKEN`, `context <name>` or `the make up stack`. */
  tokenSource: string;
}

/** Where a running development stack writes its URLs and credentials. */
export function stackInfoPath(env: Env = processEnv()): string {
  return join(ameideHome(env), 'stack', 'stack.json');
}

/**
 * The stack.json of a running `make up` stack: `<AMEIDE_HOME>/stack/stack.json` when AMEIDE_HOME is
 * set, else `.ameide/stack/stack.json` in `cwd` or the nearest directory above it that has one (so the
 * CLI finds the repository's stack from any of its subdirectories).
 */
export function findStackInfo(env: Env = processEnv(), cwd = process.cwd()): string | undefined {
  if (env.AMEIDE_HOME) return existsSync(stackInfoPath(env)) ? stackInfoPath(env) : undefined;
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const file = join(dir, '.ameide', 'stack', 'stack.json');
    if (existsSync(file)) return file;
    if (dirname(dir) === dir) return undefined;
  }
}

const schema = z.object({
  AMEIDE_API_URL: url(['http:', 'https:']).optional(),
  AMEIDE_TOKEN: z.string().optional(),
  AMEIDE_CONTEXT: z.string().optional(),
});

/** One named API and its token, as `ameide login` stores it. */
export interface CliContext {
  apiUrl: string;
  token: string;
}

/** The CLI's settings file: named contexts and the current one. */
export interface CliContexts {
  current?: string;
  contexts: Record<string, CliContext>;
}

const fileSchema = z
  .object({
    'current-context': z.string().optional(),
    contexts: z.record(z.string(), z.object({ 'api-url': url(['http:', 'https:']), token: z.string().min(1) }).strict()).default({}),
  })
  .strict();

/**
 * `$XDG_CONFIG_HOME/ameide/config.yaml` (default `~/.config/ameide/config.yaml`): the contexts
 * `ameide login` and `ameide context use` write. Undefined when neither XDG_CONFIG_HOME nor HOME is set.
 */
export function cliConfigPath(env: Env = processEnv()): string | undefined {
  const base = env.XDG_CONFIG_HOME || (env.HOME ? join(env.HOME, '.config') : undefined);
  return base ? join(resolve(base), 'ameide', 'config.yaml') : undefined;
}

/** Reads the contexts file; none stored when it does not exist. A malformed file is a ConfigError naming it. */
export function readCliContexts(env: Env = processEnv()): CliContexts {
  const file = cliConfigPath(env);
  if (!file || !existsSync(file)) return { contexts: {} };
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8')) ?? {};
  } catch (err) {
    throw new ConfigError(`${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const r = fileSchema.safeParse(doc);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ConfigError(`${file}: ${issue.path.join('.') || 'file'}: ${issue.message}`);
  }
  const contexts: Record<string, CliContext> = {};
  for (const [name, c] of Object.entries(r.data.contexts)) contexts[name] = { apiUrl: c['api-url'], token: c.token };
  return { current: r.data['current-context'], contexts };
}

/**
 * Writes the contexts file atomically: its directory mode 0700, the file 0600 (it holds tokens).
 * Returns the file's path.
 */
export function writeCliContexts(value: CliContexts, env: Env = processEnv()): string {
  const file = cliConfigPath(env);
  if (!file) throw new ConfigError('Invalid setting HOME: not set (or set XDG_CONFIG_HOME): the CLI keeps its contexts under it');
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const doc = {
    ...(value.current ? { 'current-context': value.current } : {}),
    contexts: Object.fromEntries(Object.entries(value.contexts).map(([name, c]) => [name, { 'api-url': c.apiUrl, token: c.token }])),
  };
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `# ameide CLI contexts: written by \`ameide login\` and \`ameide context use\`\n${stringify(doc)}`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}

/**
 * Reads the CLI settings, first found wins:
 * 1. AMEIDE_API_URL / AMEIDE_TOKEN;
 * 2. the context named by `context` (the `--context` flag) or AMEIDE_CONTEXT, else the file's current context;
 * 3. the development stack started by `make up` (found from `cwd` upwards), so `ameide …` works right after it;
 * 4. http://127.0.0.1:8080 (the token has no default).
 * A context's token is sent to its own API only: with AMEIDE_API_URL pointing elsewhere, AMEIDE_TOKEN is needed.
 */
export function loadCliConfig(env: Env = processEnv(), opts: { context?: string; cwd?: string } = {}): CliConfig {
  const e = parseEnv(schema, env);
  const name = opts.context || e.AMEIDE_CONTEXT;
  const stored = e.AMEIDE_TOKEN && e.AMEIDE_API_URL ? { contexts: {} } : readCliContexts(env);
  const contextName = name ?? stored.current;
  let context: CliContext | undefined;
  if (contextName) {
    context = stored.contexts[contextName];
    if (!context && name) {
      const known = Object.keys(stored.contexts);
      throw new ConfigError(`no context "${name}"${known.length ? `: use ${known.join(', ')}` : ''} (ameide login --context ${name} creates it)`);
    }
  }
  if (e.AMEIDE_TOKEN)
    return {
      apiUrl: e.AMEIDE_API_URL ?? context?.apiUrl ?? stackInfo(env, opts.cwd).apiUrl ?? DEFAULT_API_URL,
      token: e.AMEIDE_TOKEN,
      tokenSource: 'AMEIDE_TOKEN',
    };
  if (context) {
    if (e.AMEIDE_API_URL && e.AMEIDE_API_URL !== context.apiUrl)
      throw new ConfigError(
        `Invalid setting AMEIDE_TOKEN: not set, and context "${contextName}"'s token is only sent to ${context.apiUrl}, not AMEIDE_API_URL ${e.AMEIDE_API_URL}`,
      );
    return { apiUrl: context.apiUrl, token: context.token, tokenSource: `context ${contextName}` };
  }
  const stack = stackInfo(env, opts.cwd);
  if (!stack.devToken) throw new ConfigError('Invalid setting AMEIDE_TOKEN: not set (run `make up`, `ameide login`, or export a bearer token)');
  return { apiUrl: e.AMEIDE_API_URL ?? stack.apiUrl ?? DEFAULT_API_URL, token: stack.devToken, tokenSource: 'the make up stack' };
}

const DEFAULT_API_URL = 'http://127.0.0.1:8080';

function stackInfo(env: Env, cwd: string | undefined): { apiUrl?: string; devToken?: string } {
  const file = findStackInfo(env, cwd);
  if (!file) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { apiUrl?: string; devToken?: string };
  } catch {
    return {};
  }
}

/**
 * The directory relative paths on the command line are resolved against: where the user typed the
 * command. That is the working directory, except when a package manager runs the CLI as the `ameide`
 * script of the repository (it changes into the repository's root first and says where it started in
 * INIT_CWD).
 */
export function cliWorkingDir(env: Env = processEnv(), cwd = process.cwd()): string {
  return env.npm_lifecycle_event === 'ameide' && env.INIT_CWD ? resolve(env.INIT_CWD) : cwd;
}

/** The terminal's width for tables: the stdout's columns on a terminal, else COLUMNS when set, else none (no truncation). */
export function cliColumns(ttyColumns: number | undefined, env: Env = processEnv()): number | undefined {
  if (ttyColumns) return ttyColumns;
  const n = Number(env.COLUMNS);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Whether the CLI colours its output: only on a terminal (`isTty`, the caller's stdout), and never
 * when NO_COLOR is set to anything but the empty string (https://no-color.org).
 */
export function cliColor(isTty: boolean, env: Env = processEnv()): boolean {
  return isTty && !env.NO_COLOR;
}

/** Where the CLI links a run's workflow in the Temporal Web UI (`ameide runs open`). */
export interface CliTemporalUi {
  /** The Web UI's base URL, without a trailing slash. */
  uiUrl: string;
  namespace: string;
}

const temporalUiSchema = z.object({
  AMEIDE_TEMPORAL_UI_URL: url(['http:', 'https:']).optional(),
  TEMPORAL_NAMESPACE: z.string().default('default'),
});

/**
 * The Temporal Web UI of the CLI: AMEIDE_TEMPORAL_UI_URL, else the one the `make up` stack records
 * (`temporalUiUrl` in its stack.json, found as loadCliConfig finds it), else http://127.0.0.1:8233 (the dev server's and compose's
 * port); the namespace runs live in is TEMPORAL_NAMESPACE (default `default`), as for the service.
 */
export function loadCliTemporalUi(env: Env = processEnv()): CliTemporalUi {
  const e = parseEnv(temporalUiSchema, env);
  let uiUrl = e.AMEIDE_TEMPORAL_UI_URL;
  const info = uiUrl ? undefined : findStackInfo(env);
  if (info) {
    try {
      uiUrl = (JSON.parse(readFileSync(info, 'utf8')) as { temporalUiUrl?: string }).temporalUiUrl;
    } catch {
      uiUrl = undefined;
    }
  }
  return { uiUrl: (uiUrl ?? 'http://127.0.0.1:8233').replace(/\/+$/, ''), namespace: e.TEMPORAL_NAMESPACE };
}
