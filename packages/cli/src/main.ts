import { Command, type CommanderError } from 'commander';
import { cliColor, cliColumns, cliWorkingDir, loadCliConfig, processEnv, type CliConfig } from '@ameide/config';
import { Code, ConnectError, createBacklogServiceClient, createGovernanceServiceClient, createWorkflowServiceClient } from '@ameide/sdk';
import pkg from '../package.json' with { type: 'json' };
import { commandLineError, examples, refuseRepeats } from './args.js';
import { refused, registerDefinitions, registerPlans, registerProfiles, registerRuns, registerWorkItems } from './commands.js';
import { registerCompletion } from './completion.js';
import type { Clients, Ctx } from './context.js';
import { registerEvidence } from './evidence.js';
import { registerImpediments } from './impediments.js';
import { registerContexts } from './login.js';
import { registerNotifications } from './notifications.js';
import type { Output, Terminal } from './output.js';
import { registerPreviews } from './previews.js';
import { registerPrs } from './prs.js';

/** The CLI's version (its package's). */
export const VERSION = pkg.version;

export interface CliOptions {
  /** API clients to use instead of those the settings name (tests). */
  clients?: Partial<Clients>;
  /** Aborted on Ctrl-C: watching commands stop and say how to follow again. */
  signal?: AbortSignal;
  /** Colour, width and whether stdout is a terminal; default: this process's stdout and environment. */
  term?: Partial<Terminal>;
  /** Where relative paths resolve; default: where the user typed the command. */
  cwd?: string;
}

const defaultOutput: Output = { out: (l) => console.log(l), err: (l) => console.error(l) };

/**
 * Runs one CLI invocation and returns its exit code: 0, 1 when the command failed (a run that did not
 * complete, evidence that did not verify), 2 after printing help for a command given without its
 * subcommand. Errors are thrown as one-line messages (`expected: true`; `exitCode` 2 for command-line
 * mistakes, 1 otherwise): the binary prints them as `error: …`.
 */
export async function cli(argv: string[], o: Output = defaultOutput, opts: CliOptions = {}): Promise<number> {
  const env = processEnv();
  const stdout = process.stdout;
  let cfg: CliConfig | undefined;
  const program = new Command('ameide');
  const config = () => (cfg ??= loadCliConfig(env, { context: program.opts<{ context?: string }>().context, cwd: opts.cwd ?? process.cwd() }));
  const api = { baseUrl: () => config().apiUrl, token: () => config().token };
  const clients: Partial<Clients> = { ...opts.clients };
  const ctx: Ctx = {
    o,
    term: {
      color: opts.term?.color ?? cliColor(stdout.isTTY === true, env),
      columns: opts.term && 'columns' in opts.term ? opts.term.columns : cliColumns(stdout.isTTY ? stdout.columns : undefined, env),
      interactive: opts.term?.interactive ?? stdout.isTTY === true,
    },
    cwd: opts.cwd ?? cliWorkingDir(env),
    signal: opts.signal,
    exitCode: 0,
    workflows: () => (clients.workflows ??= createWorkflowServiceClient({ baseUrl: api.baseUrl(), token: api.token() })),
    governance: () => (clients.governance ??= createGovernanceServiceClient({ baseUrl: api.baseUrl(), token: api.token() })),
    backlog: () => (clients.backlog ??= createBacklogServiceClient({ baseUrl: api.baseUrl(), token: api.token() })),
  };
  buildProgram(program, ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof HelpShown) return err.exitCode;
    if (err instanceof ConnectError) throw apiError(err, cfg);
    throw err;
  }
}

/** Help or the version was printed (exit 0), or help for a command given without its subcommand (exit 2). */
class HelpShown extends Error {
  constructor(readonly exitCode: number) {
    super('help shown');
  }
}

/** A failed API call as one line, with what to do when the API is not there or did not accept the token. */
function apiError(err: ConnectError, cfg: CliConfig | undefined): Error {
  const where = cfg?.apiUrl ?? 'the API';
  let message: string;
  if (err.code === Code.Unavailable && refused(err)) message = `no API at ${where}: start one with \`make up\` or set AMEIDE_API_URL`;
  else if (err.code === Code.Unauthenticated) {
    const fix = !cfg
      ? 'check the token'
      : cfg.tokenSource === 'AMEIDE_TOKEN'
        ? 'fix AMEIDE_TOKEN'
        : cfg.tokenSource.startsWith('context ')
          ? `log in again: ameide login --context ${cfg.tokenSource.slice('context '.length)} --api-url ${cfg.apiUrl} --with-token`
          : 'the `make up` stack issued a new token: restart it with `make up`, or set AMEIDE_TOKEN';
    message = `${where} did not accept the token from ${cfg?.tokenSource ?? 'the settings'} (${err.rawMessage}): ${fix}`;
  } else message = `${err.rawMessage} (${codeName(err)})`;
  return Object.assign(new Error(message), { expected: true, exitCode: 1 });
}

function codeName(err: ConnectError): string {
  const names: Record<number, string> = {
    3: 'invalid argument',
    5: 'not found',
    6: 'already exists',
    7: 'permission denied',
    9: 'failed precondition',
    14: 'unavailable',
    16: 'unauthenticated',
  };
  return names[err.code] ?? `code ${err.code}`;
}

/** `ameide runs list` for a command: its path from the root. */
const pathOf = (cmd: Command): string => (cmd.parent ? `${pathOf(cmd.parent)} ${cmd.name()}` : cmd.name());

/** A commander error as the CLI says it: one line naming the flag or command, exit 2. */
function commanderError(cmd: Command, err: CommanderError): Error {
  const path = pathOf(cmd);
  const bare = err.message.replace(/^error: /, '');
  switch (err.code) {
    case 'commander.helpDisplayed':
    case 'commander.version':
      return new HelpShown(0);
    case 'commander.help':
      return new HelpShown(2);
    case 'commander.unknownCommand': {
      const name = /'([^']*)'/.exec(bare)?.[1] ?? '';
      const subs = cmd.commands.map((c) => c.name());
      const list = subs.length > 1 ? `${subs.slice(0, -1).join(', ')} or ${subs.at(-1)}` : subs.join('');
      return commandLineError(`unknown command "${cmd.parent ? `${path.replace(/^ameide /, '')} ` : ''}${name}"; use ${list}`);
    }
    case 'commander.missingMandatoryOptionValue': {
      const flag = /option '([^']*)'/.exec(bare)?.[1];
      return commandLineError(flag ? `${path.replace(/^ameide /, '')} needs ${flag}` : bare);
    }
    case 'commander.optionMissingArgument': {
      const flag = /option '([^']*)'/.exec(bare)?.[1];
      return commandLineError(
        flag
          ? `${flag
              .split(/[ ,]/)
              .filter((f) => f.startsWith('-'))
              .at(-1)} needs a value`
          : bare,
      );
    }
    case 'commander.missingArgument': {
      const arg = /argument '([^']*)'/.exec(bare)?.[1];
      return commandLineError(arg ? `${path.replace(/^ameide /, '')} needs <${arg}>` : bare);
    }
    case 'commander.invalidArgument': {
      const m = /option '([^' ,]*)(?:, ([^' ]*))?[^']*' argument '(.*)' is invalid\. Allowed choices are (.*)\.$/.exec(bare);
      if (m) return commandLineError(`${m[2] ?? m[1]} ${m[3]}: use ${m[4]}`);
      const a = /argument value '(.*)' is invalid for argument '(.*)'\. Allowed choices are (.*)\.$/.exec(bare);
      return commandLineError(a ? `${path.replace(/^ameide /, '')} ${a[1]}: use ${a[3]}` : bare);
    }
    case 'commander.unknownOption':
      return commandLineError(`${bare} (ameide ${path.replace(/^ameide ?/, '')}${path === 'ameide' ? '' : ' '}--help lists the flags)`);
    default:
      return commandLineError(bare);
  }
}

const ROOT_HELP = `
Settings (first found wins):
  AMEIDE_API_URL, AMEIDE_TOKEN  the API and its bearer token
  --context, AMEIDE_CONTEXT     a context saved by \`ameide login\` (default: the current one, \`ameide context use\`)
  the \`make up\` stack         found from the working directory upwards (.ameide/stack/stack.json)
  Contexts are kept in $XDG_CONFIG_HOME/ameide/config.yaml (default ~/.config/ameide/config.yaml).

Output: -o json|yaml|wide on every read command (--json = -o json). JSON and YAML name enum values as
the text does, in lower case without their prefix (RUN_STATUS_HANDED_OFF is "handed_off"). Colour only
on a terminal, never with NO_COLOR. Exit codes: 0 success, 1 failure (or a run that did not complete),
2 a command-line mistake.`;

/** The whole command tree, its help and completion. */
export function buildProgram(program: Command, ctx: Ctx): Command {
  program
    .description('Ameide delivery automation: definitions, plans, coding-agent runs and what follows them')
    .version(VERSION, '--version', 'print the version')
    .option('--context <name>', 'use this saved context (see ameide context list)')
    .helpOption('-h, --help', 'show help for a command')
    .helpCommand(false)
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (s) => ctx.o.out(s.replace(/\n$/, '')),
      writeErr: (s) => (ctx.o.err ?? ((l: string) => console.error(l)))(s.replace(/\n$/, '')),
      outputError: () => {},
    })
    .showSuggestionAfterError(true)
    .addHelpText('after', ROOT_HELP);
  examples(program, 'ameide login --api-url https://ameide.example.com --with-token < token.txt', 'ameide runs list --failed', 'ameide help runs start');

  registerDefinitions(program, ctx);
  registerPlans(program, ctx);
  registerRuns(program, ctx);
  registerPrs(program, ctx);
  registerPreviews(program, ctx);
  registerWorkItems(program, ctx);
  registerProfiles(program, ctx);
  registerEvidence(program, ctx);
  registerImpediments(program, ctx);
  registerNotifications(program, ctx);
  registerContexts(program, ctx);
  registerCompletion(program, ctx);

  examples(
    program.command('help').description('show help for a command').argument('[command...]', 'the command, e.g. runs list'),
    'ameide help runs list',
  ).action((words: string[]) => {
    let cmd: Command = program;
    for (const w of words) {
      const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
      if (!sub) throw commandLineError(`no command "${[...words.slice(0, words.indexOf(w)), w].join(' ')}"; ameide --help lists them`);
      cmd = sub;
    }
    cmd.outputHelp();
  });

  const finish = (cmd: Command) => {
    cmd.exitOverride((err) => {
      throw commanderError(cmd, err);
    });
    cmd.helpCommand(false);
    for (const sub of cmd.commands) finish(sub);
  };
  finish(program);
  refuseRepeats(program);
  return program;
}
