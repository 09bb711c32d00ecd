import type { Command } from 'commander';
import { cliConfigPath, findStackInfo, processEnv, readCliContexts, writeCliContexts } from '@ameide/config';
import { createWorkflowServiceClient } from '@ameide/sdk';
import { commandLineError, examples, UsageError } from './args.js';
import { act, withOutput, type OutputOptions } from './commands.js';
import type { Ctx } from './context.js';
import { emit, formatOf, note, table } from './output.js';

/** Reads all of stdin (a token piped in with --with-token). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `ameide login` and `ameide context list|use|current|delete`: named APIs and their tokens, kept in the CLI's config file. */
export function registerContexts(program: Command, ctx: Ctx): void {
  const env = processEnv();

  examples(
    program
      .command('login')
      .description(
        'save an API and its token as a context (named by --context, default "default") and make it the current one; checks the token first, unless --no-verify. AMEIDE_API_URL and AMEIDE_TOKEN still override it',
      )
      .requiredOption('--api-url <url>', 'the workflow service, e.g. https://ameide.example.com')
      .option('--token <token>', 'the bearer token (a JWT or an API key); prefer --with-token, which keeps it out of the shell history')
      .option('--with-token', 'read the token from standard input')
      .option('--no-verify', 'save without calling the API'),
    'ameide login --api-url https://ameide.example.com --with-token < token.txt',
    'ameide login --api-url http://127.0.0.1:8080 --token "$TOKEN" --context local',
  ).action(
    act(ctx, async (opts: { apiUrl: string; token?: string; withToken?: boolean; verify: boolean }) => {
      const name = program.opts<{ context?: string }>().context || 'default';
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
    }),
  );

  const contexts = program.command('context').description('saved APIs and tokens (ameide login adds them): list them, pick the current one');
  examples(contexts, 'ameide context list', 'ameide context use staging');

  examples(
    withOutput(contexts.command('list').description('list saved contexts; * marks the current one (tokens are not shown)'), ['json', 'yaml']),
    'ameide context list',
  ).action(
    act(ctx, (opts: OutputOptions) => {
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
    }),
  );

  examples(contexts.command('use').description('make a saved context the current one').argument('<name>', 'context name'), 'ameide context use staging').action(
    act(ctx, (name: string) => {
      const stored = readCliContexts(env);
      if (!stored.contexts[name]) {
        const known = Object.keys(stored.contexts);
        throw new UsageError(`no context "${name}"${known.length ? `: use ${known.join(', ')}` : ''} (ameide login --context ${name} saves one)`);
      }
      stored.current = name;
      writeCliContexts(stored, env);
      ctx.o.out(`now using context "${name}" (${stored.contexts[name].apiUrl})`);
      return 0;
    }),
  );

  examples(
    withOutput(contexts.command('current').description('the current context and its API (exit 1 when there is none)'), ['json', 'yaml']),
    'ameide context current',
  ).action(
    act(ctx, (opts: OutputOptions) => {
      const stored = readCliContexts(env);
      const name = program.opts<{ context?: string }>().context || env.AMEIDE_CONTEXT || stored.current;
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
    }),
  );

  examples(
    contexts.command('delete').description('forget a saved context and its token').argument('<name>', 'context name'),
    'ameide context delete staging',
  ).action(
    act(ctx, (name: string) => {
      const stored = readCliContexts(env);
      if (!stored.contexts[name]) throw new UsageError(`no context "${name}"`);
      delete stored.contexts[name];
      if (stored.current === name) stored.current = undefined;
      writeCliContexts(stored, env);
      ctx.o.out(`deleted context "${name}"`);
      return 0;
    }),
  );
}
