import { Command, type CommanderError } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { commandLineError, examples, refuseRepeats } from './args.js';
import { registerCompletion } from './completion.js';
import type { Clients, Ctx } from './context.js';
import { apiError } from './errors.js';
import type { Output, Terminal } from './output.js';
import {
  registerContexts,
  registerDefinitions,
  registerEvidence,
  registerImpediments,
  registerNotifications,
  registerPlans,
  registerPreviews,
  registerProfiles,
  registerPrs,
  registerRuns,
  registerWorkItems,
} from './tree.js';

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

const notReady = (): never => {
  throw new Error('the CLI context is not ready');
};

/**
 * Runs one CLI invocation and returns its exit code: 0, 1 when the command failed (a run that did not
 * complete, evidence that did not verify), 2 after printing help for a command given without its
 * subcommand. Errors are thrown as one-line messages (`expected: true`; `exitCode` 2 for command-line
 * mistakes, 1 otherwise): the binary prints them as `error: …`.
 */
export async function cli(argv: string[], o: Output = defaultOutput, opts: CliOptions = {}): Promise<number> {
  const program = new Command('ameide');
  let ready: Promise<void> | undefined;
  const ctx: Ctx = {
    o,
    term: { color: false, interactive: false },
    cwd: opts.cwd ?? process.cwd(),
    signal: opts.signal,
    exitCode: 0,
    workflows: notReady,
    governance: notReady,
    backlog: notReady,
    ready: () =>
      (ready ??= import('./runtime.js').then((rt) => {
        ctx.context = program.opts<{ context?: string }>().context;
        rt.prepare(ctx, opts);
      })),
  };
  buildProgram(program, ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof HelpShown) return err.exitCode;
    throw apiError(err, ctx.api);
  }
}

/** Help or the version was printed (exit 0), or help for a command given without its subcommand (exit 2). */
class HelpShown extends Error {
  constructor(readonly exitCode: number) {
    super('help shown');
  }
}

/** `ameide runs list` for a command: its path from the root. */
const pathOf = (cmd: Command): string => (cmd.parent ? `${pathOf(cmd.parent)} ${cmd.name()}` : cmd.name());

/** A commander error as the CLI says it: one line naming the flag or command, exit 2. */
function commanderError(cmd: Command, err: CommanderError): Error {
  const path = pathOf(cmd);
  const sub = path.replace(/^ameide ?/, '');
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
      return commandLineError(`unknown command "${sub ? `${sub} ` : ''}${name}"; use ${list}`);
    }
    case 'commander.missingMandatoryOptionValue': {
      const flag = /option '([^']*)'/.exec(bare)?.[1];
      return commandLineError(flag ? `${sub} needs ${flag}` : bare);
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
      return commandLineError(arg ? `${sub} needs <${arg}>` : bare);
    }
    case 'commander.invalidArgument': {
      const m = /option '([^' ,]*)(?:, ([^' ]*))?[^']*' argument '(.*)' is invalid\. Allowed choices are (.*)\.$/.exec(bare);
      if (m) return commandLineError(`${m[2] ?? m[1]} ${m[3]}: use ${m[4]}`);
      const a = /argument value '(.*)' is invalid for argument '(.*)'\. Allowed choices are (.*)\.$/.exec(bare);
      return commandLineError(a ? `${sub} ${a[1]}: use ${a[3]}` : bare);
    }
    case 'commander.unknownOption':
      return commandLineError(`${bare} (ameide ${sub ? `${sub} ` : ''}--help lists the flags)`);
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
