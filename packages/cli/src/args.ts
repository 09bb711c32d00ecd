/** Parsed command line: positionals and --flags (repeatable flags collect into arrays). */
export interface Args {
  positionals: string[];
  flags: Map<string, string[]>;
}

export class UsageError extends Error {
  readonly expected = true;
}

const BOOLEAN_FLAGS = new Set(['json', 'watch', 'help', 'ready', 'not-ready', 'stat', 'unread', 'all']);

export function parseArgs(argv: string[]): Args {
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-f') {
      add(flags, 'file', argv[++i]);
    } else if (a.startsWith('--')) {
      const [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      if (BOOLEAN_FLAGS.has(name)) add(flags, name, inline ?? 'true');
      else add(flags, name, inline ?? argv[++i]);
    } else positionals.push(a);
  }
  return { positionals, flags };
}

function add(flags: Map<string, string[]>, name: string, value: string | undefined): void {
  if (value === undefined) throw new UsageError(`--${name} needs a value`);
  flags.set(name, [...(flags.get(name) ?? []), value]);
}

export function flag(args: Args, name: string): string | undefined {
  return args.flags.get(name)?.at(-1);
}

export function flags(args: Args, name: string): string[] {
  return args.flags.get(name) ?? [];
}

export function has(args: Args, name: string): boolean {
  return args.flags.has(name);
}

export function positional(args: Args, index: number, what: string): string {
  const v = args.positionals[index];
  if (!v) throw new UsageError(`missing ${what}`);
  return v;
}
