import { Option, type Command } from 'commander';
import type { Format } from './output.js';

/** A mistake in what the user asked: printed as one line. Exit 2 for command-line errors, 1 for the rest (a file that cannot be read). */
export class UsageError extends Error {
  readonly expected = true;
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** A command-line error (unknown or repeated flag, missing value, bad flag value): exit 2. */
export const commandLineError = (message: string) => new UsageError(message, 2);

/** Options that may be given more than once (they collect their values). */
const REPEATABLE = new WeakSet<Option>();

/** A repeatable option: `--link a --link b` collects ['a', 'b'] (each value through `parse`, when given). */
export function repeatable(flags: string, description: string, parse: (value: string) => string = (v) => v): Option {
  const opt = new Option(flags, description).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), parse(value)]);
  REPEATABLE.add(opt);
  return opt;
}

/** The flag as the user writes it: `--definition` (or `-f` for a short-only one). */
export const flagName = (opt: Option) => opt.long ?? opt.short ?? opt.flags;

/**
 * Makes every value-taking option of `cmd` and its subcommands that is not repeatable refuse a second
 * value (`--definition a --definition b`), naming the flag, instead of keeping the last one silently.
 */
export function refuseRepeats(cmd: Command): void {
  for (const opt of cmd.options) {
    if (REPEATABLE.has(opt) || !(opt.required || opt.optional) || opt.variadic) continue;
    const inner = opt.parseArg;
    let given = false;
    opt.argParser((value: string, previous: unknown) => {
      if (given) throw commandLineError(`${flagName(opt)} given twice: it takes one value`);
      given = true;
      return inner ? inner(value, previous) : value;
    });
  }
  for (const sub of cmd.commands) refuseRepeats(sub);
}

/** A whole number option value in [min, max]. */
export function wholeNumber(flag: string, min: number, max: number, what = 'a whole number'): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw commandLineError(`${flag} ${value}: must be ${what} (${min}–${max})`);
    return Number(value);
  };
}

/** "Examples:" below a command's help. */
export function examples(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => (l.startsWith('#') ? `  ${l}` : `  $ ${l}`)).join('\n')}`);
}

/** Options every read command takes. */
export interface OutputOptions {
  output?: string;
  json?: boolean;
}

/** `-o json|yaml|wide` and `--json` (same as -o json). */
export function withOutput(cmd: Command, formats: Format[] = ['json', 'yaml', 'wide']): Command {
  return cmd
    .addOption(new Option('-o, --output <format>', 'output format instead of text (JSON and YAML name enum values as the text does)').choices(formats))
    .option('--json', 'same as -o json');
}

/** `--limit n`: at most n items (the request's page size). */
export function withLimit(cmd: Command): Command {
  return cmd.option('--limit <n>', 'list at most n items', wholeNumber('--limit', 1, 1000));
}

/** A command group (`runs`, `plans`, …): its help lists its subcommands; without one it prints that help and exits 2. */
export function group(parent: Command, name: string, description: string): Command {
  return parent.command(name).description(description);
}

/** Every run status as `--status` takes it (RunStatus without its prefix, in lower case; a unit test holds it to the contracts). */
export const RUN_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled', 'handed_off'];

/** Positionals and --flags split by hand (repeatable flags collect into arrays). */
export interface Args {
  positionals: string[];
  flags: Map<string, string[]>;
}

const BOOLEAN_FLAGS = new Set(['json', 'watch', 'help', 'ready', 'not-ready', 'stat', 'unread', 'all']);

/**
 * The CLI's former hand-rolled argument splitter. The CLI parses with commander now; this is kept only
 * while packages/cli/test/definition-file.test.ts still tests it, and goes with that test.
 */
export function parseArgs(argv: string[]): Args {
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  const add = (name: string, value: string | undefined) => {
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    flags.set(name, [...(flags.get(name) ?? []), value]);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-f') add('file', argv[++i]);
    else if (a.startsWith('--')) {
      const [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      add(name, BOOLEAN_FLAGS.has(name) ? (inline ?? 'true') : (inline ?? argv[++i]));
    } else positionals.push(a);
  }
  return { positionals, flags };
}
