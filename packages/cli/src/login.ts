import { cliConfigPath, findStackInfo, processEnv, readCliContexts, writeCliContexts } from '@ameide/config';
import { createWorkflowServiceClient } from '@ameide/sdk';
import { commandLineError, UsageError, type OutputOptions } from './args.js';
import type { Ctx } from './context.js';
import { emit, formatOf, note, table } from './output.js';

const env = processEnv();

/** Reads all of stdin (a token piped in with --with-token). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function login(ctx: Ctx, opts: { apiUrl: string; token?: string; withToken?: boolean; verify: boolean }): Promise<number> {
  const name = ctx.context || 'default';
  if (opts.token && opts.withToken) throw commandLineError('use --token or --with-token, not both');
  const token = (opts.withToken ? await readStdin() : (opts.token ?? '')).trim();
  if (!token) throw commandLineError('login needs --token <token> or --with-token (the token on standard input)');
  let apiUrl: string;
  try {
    const u = new URL(opts.apiUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    apiUrl = opts.apiUrl.replace(/\/+$/, '');
  } catch {
    throw commandLineError(`--api-url ${opts.apiUrl}: must be an http:// or https:// URL`);
  }
  if (opts.verify) {
    ctx.api = { url: apiUrl, tokenSource: '--token / --with-token' };
    // Any authenticated call: a wrong token or no API fails here, before anything is saved.
    await createWorkflowServiceClient({ baseUrl: apiUrl, token }).listDefinitions({ pageSize: 1 });
  }
  const stored = readCliContexts(env);
  stored.contexts[name] = { apiUrl, token };
  stored.current = name;
  const file = writeCliContexts(stored, env);
  ctx.o.out(`logged in to ${apiUrl} as context "${name}" (now the current context; saved in ${file})`);
  if (env.AMEIDE_API_URL || env.AMEIDE_TOKEN) note(ctx.o, 'note: AMEIDE_API_URL / AMEIDE_TOKEN are set in this shell and override the context');
  return 0;
}

export function contextList(ctx: Ctx, opts: OutputOptions): number {
  const stored = readCliContexts(env);
  const names = Object.keys(stored.contexts).sort();
  emit(
    ctx.o,
    formatOf(opts),
    names.map((name) => ({ name, apiUrl: stored.contexts[name]!.apiUrl, current: name === stored.current })),
    () =>
      table(
        ctx.term,
        [{ header: 'current' }, { header: 'name' }, { header: 'api url' }],
        names.map((name) => [name === stored.current ? '*' : '', name, stored.contexts[name]!.apiUrl]),
        `no contexts (ameide login saves one${findStackInfo(env, ctx.cwd) ? '; the `make up` stack here is used meanwhile' : ''})`,
      ),
  );
  return 0;
}

export function contextUse(ctx: Ctx, name: string): number {
  const stored = readCliContexts(env);
  if (!stored.contexts[name]) {
    const known = Object.keys(stored.contexts);
    throw new UsageError(`no context "${name}"${known.length ? `: use ${known.join(', ')}` : ''} (ameide login --context ${name} saves one)`);
  }
  stored.current = name;
  writeCliContexts(stored, env);
  ctx.o.out(`now using context "${name}" (${stored.contexts[name].apiUrl})`);
  return 0;
}

export function contextCurrent(ctx: Ctx, opts: OutputOptions): number {
  const stored = readCliContexts(env);
  const name = ctx.context || env.AMEIDE_CONTEXT || stored.current;
  const c = name ? stored.contexts[name] : undefined;
  if (!name || !c) {
    const stack = findStackInfo(env, ctx.cwd);
    ctx.o.out(
      name ? `context "${name}" is not saved` : `no current context${stack ? ` (the \`make up\` stack's ${stack} is used)` : ' (ameide login saves one)'}`,
    );
    return 1;
  }
  emit(ctx.o, formatOf(opts), { name, apiUrl: c.apiUrl, file: cliConfigPath(env) }, () => `${name} (${c.apiUrl})`);
  if (env.AMEIDE_API_URL || env.AMEIDE_TOKEN) note(ctx.o, 'note: AMEIDE_API_URL / AMEIDE_TOKEN are set in this shell and override the context');
  return 0;
}

export function contextDelete(ctx: Ctx, name: string): number {
  const stored = readCliContexts(env);
  if (!stored.contexts[name]) throw new UsageError(`no context "${name}"`);
  delete stored.contexts[name];
  if (stored.current === name) stored.current = undefined;
  writeCliContexts(stored, env);
  ctx.o.out(`deleted context "${name}"`);
  return 0;
}
