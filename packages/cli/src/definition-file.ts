import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Code, ConnectError } from '@ameide/sdk';
import { parse } from 'yaml';
import { z } from 'zod';
import { UsageError } from './args.js';

/** The definition file format (docs/definitions.md). */
export const definitionFileSchema = z
  .object({
    name: z.string(),
    annotations: z.record(z.string(), z.string()).default({}),
    spec: z
      .object({
        repoUrl: z.string(),
        defaultBranch: z.string().optional(),
        installCommand: z.string().optional(),
        agentCommand: z.string().optional(),
        testCommand: z.string().optional(),
        branchPrefix: z.string().optional(),
        phaseTimeoutSeconds: z.number().int().positive().optional(),
        env: z.record(z.string(), z.string()).default({}),
        guardrails: z
          .object({
            sandbox: z.enum(['bubblewrap', 'none']).optional(),
            allowedPaths: z.array(z.string()).optional(),
            deniedPaths: z.array(z.string()).optional(),
            // `agent: model`: the agent phase reaches only its model endpoint (spec.agent.endpoint).
            network: z
              .object({ install: z.boolean(), agent: z.union([z.boolean(), z.literal('model')]), test: z.boolean() })
              .partial()
              .strict()
              .optional(),
            budgets: z
              .object({
                maxCommands: z.number().int().positive(),
                runTimeoutSeconds: z.number().int().positive(),
                maxOutputBytes: z.number().int().positive(),
                maxProcesses: z.number().int().positive(),
                maxFileBytes: z.number().int().positive(),
              })
              .partial()
              .strict()
              .optional(),
            packageCaches: z.array(z.enum(['npm', 'pnpm', 'pip', 'go'])).optional(),
            // The service's rule too (spec.guardrails.read_only_paths), checked here so that every problem shows at once.
            readOnlyPaths: z
              .array(z.string().refine((p) => p.startsWith('/') && !p.split('/').includes('..'), 'must be an absolute path without ".."'))
              .optional(),
            egressHosts: z.array(z.string()).optional(),
          })
          .strict()
          .optional(),
        secrets: z
          .array(z.object({ name: z.string(), phases: z.array(z.enum(['install', 'agent', 'test', 'preview'])).min(1), fromEnv: z.string() }).strict())
          .default([]),
        testReports: z.array(z.string()).optional(),
        agent: z
          .object({
            kind: z.enum(['command', 'codex', 'claude-code', 'langchain']),
            model: z.string().optional(),
            endpoint: z.string().optional(),
            api: z.enum(['responses', 'chat', 'messages']).optional(),
            apiKeySecret: z.string().optional(),
            maxTurns: z.number().int().positive().optional(),
            instructions: z.string().optional(),
          })
          .strict()
          .optional(),
        preview: z
          .object({
            provider: z.enum(['local', 'command']).optional(),
            command: z.string(),
            aliasCommand: z.string().optional(),
            healthPath: z.string().optional(),
            readyTimeoutSeconds: z.number().int().positive().optional(),
            ttlSeconds: z.number().int().positive().optional(),
          })
          .strict()
          .optional(),
        pullRequest: z
          .object({
            provider: z.enum(['git', 'github', 'gitlab', 'none']).optional(),
            draft: z.boolean().optional(),
            labels: z.array(z.string()).optional(),
            reviewers: z.array(z.string()).optional(),
            baseBranch: z.string().optional(),
            tokenFromEnv: z.string().optional(),
            apiUrl: z.string().optional(),
            repository: z.string().optional(),
          })
          .strict()
          .optional(),
      })
      .strict(),
  })
  .strict();

export type DefinitionFile = z.infer<typeof definitionFileSchema>;

/** True when the repo URL is a local path (made absolute relative to the file that names it). */
function isLocalPath(url: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^[^/]+@[^:]+:/.test(url);
}

/** How a definition file is read. */
export interface ReadDefinitionOptions {
  /**
   * Refuse a local `repoUrl` that does not exist or is not a git repository (default true). Checked
   * where the CLI runs, which is where the worker clones it from in a local stack.
   */
  checkLocalRepo?: boolean;
}

/**
 * Reads and validates a definition file. Every problem is reported at once, one line each, naming the
 * file and the key as written in the file (camelCase): `def.yaml: spec.guardrails.readOnlyPaths[0]: …`.
 * A relative local `repoUrl` is resolved against the definition file's own directory (not the
 * current directory), so a file means the same wherever the CLI is started.
 */
export function readDefinitionFile(path: string, opts: ReadDefinitionOptions = {}): DefinitionFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`cannot read definition file ${path}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = definitionFileSchema.safeParse(doc);
  const problems = result.success ? [] : result.error.issues.flatMap((issue) => describeIssue(issue, doc));
  const repoUrl = (doc as { spec?: { repoUrl?: unknown } } | null)?.spec?.repoUrl;
  const local = typeof repoUrl === 'string' && repoUrl.trim() !== '' && isLocalPath(repoUrl) ? resolve(dirname(path), repoUrl) : undefined;
  if (local !== undefined && opts.checkLocalRepo !== false) {
    const problem = localRepoProblem(local);
    if (problem) {
      const resolved = local === repoUrl ? local : `${repoUrl} (${local}: a relative path is resolved against the definition file's directory)`;
      problems.push(`spec.repoUrl: ${resolved} ${problem}`);
    }
  }
  if (problems.length || !result.success) throw new UsageError(problems.map((p) => `${path}: ${p}`).join('\n'));
  const def = result.data;
  if (local !== undefined) def.spec.repoUrl = local;
  return def;
}

/** Why a local repository path cannot be cloned, or undefined when it looks like a git repository (bare or not). */
function localRepoProblem(dir: string): string | undefined {
  if (!existsSync(dir)) return 'does not exist';
  if (!statSync(dir).isDirectory()) return 'is not a directory (a git repository is)';
  const isFile = (p: string) => existsSync(p) && statSync(p).isFile();
  const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
  if (existsSync(join(dir, '.git')) || (isFile(join(dir, 'HEAD')) && isDir(join(dir, 'objects')) && isDir(join(dir, 'refs')))) return undefined;
  return 'is not a git repository';
}

type Issue = z.core.$ZodIssue;
type Key = PropertyKey;

/** A key path as written in the file: `spec.guardrails.readOnlyPaths[0]`, `spec.env.NAME`, `annotations["a b"]`. */
export function formatKeyPath(path: readonly Key[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(k))) out += `${out ? '.' : ''}${String(k)}`;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

function valueAt(doc: unknown, path: readonly Key[]): unknown {
  let v = doc;
  for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<Key, unknown>)[k] : undefined;
  return v;
}

const KIND: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** One line per problem: the key path, then what is wrong in words that say what to write instead. */
function describeIssue(issue: Issue, doc: unknown): string[] {
  const at = (path: readonly Key[], problem: string) => (path.length ? `${formatKeyPath(path)}: ${problem}` : problem);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const hint = suggestKey(key, knownKeys(issue.path));
        return at([...issue.path, key], `unknown key${hint ? ` (did you mean ${hint}?)` : ''}`);
      });
    case 'invalid_type': {
      const value = valueAt(doc, issue.path);
      const expected = KIND[issue.expected] ?? issue.expected;
      if (value === undefined) return [at(issue.path, `is required (${expected})`)];
      if (issue.path.length === 0) return [`must be a mapping with name and spec, not ${describeValue(value)}`];
      const quote = issue.expected === 'string' && (typeof value === 'number' || typeof value === 'boolean') ? ` (quote it: "${String(value)}")` : '';
      return [at(issue.path, `must be ${expected}, not ${describeValue(value)}${quote}`)];
    }
    case 'invalid_value':
      return [at(issue.path, `must be one of ${issue.values.map((v) => String(v)).join(', ')}, not ${describeValue(valueAt(doc, issue.path))}`)];
    case 'too_small':
      if (issue.origin === 'array') return [at(issue.path, `must have at least ${String(issue.minimum)} ${issue.minimum === 1 ? 'entry' : 'entries'}`)];
      return [at(issue.path, `must be ${issue.inclusive ? 'at least' : 'greater than'} ${String(issue.minimum)}`)];
    default:
      return [at(issue.path, issue.message)];
  }
}

/** The keys the schema allows in the mapping at `path` (empty when it is not an object there). */
function knownKeys(path: readonly Key[]): string[] {
  let s: z.core.$ZodType | undefined = definitionFileSchema;
  const unwrap = (t: z.core.$ZodType): z.core.$ZodType => {
    const def = t._zod.def as { type: string; innerType?: z.core.$ZodType };
    return def.innerType && ['optional', 'default', 'nullable', 'prefault'].includes(def.type) ? unwrap(def.innerType) : t;
  };
  for (const k of path) {
    if (!s) return [];
    const def = unwrap(s)._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; valueType?: z.core.$ZodType };
    s = def.type === 'object' ? def.shape?.[String(k)] : def.type === 'array' ? def.element : def.type === 'record' ? def.valueType : undefined;
  }
  const def = s && (unwrap(s)._zod.def as { type: string; shape?: Record<string, unknown> });
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** The known key a mistyped one most likely means: its camelCase spelling, another case, or one or two letters off. */
function suggestKey(key: string, known: string[]): string | undefined {
  const camel = key.replace(/[_-]([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return (
    known.find((k) => k === camel) ??
    known.find((k) => k.toLowerCase() === key.toLowerCase().replace(/[_-]/g, '')) ??
    known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2)
  );
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** Map fields of a definition: their keys are the user's own (spec.env.MY_VAR), never renamed. */
const MAP_FIELDS = new Set(['env', 'annotations']);

/**
 * A proto field path as the service names it (`spec.guardrails.read_only_paths[0]`, `spec.secrets[1].from_env`)
 * turned into the key path of the definition file (`spec.guardrails.readOnlyPaths[0]`, `spec.secrets[1].fromEnv`).
 * Keys of map fields (`spec.env.MY_VAR`, `annotations["a b"]`) stay as written.
 */
export function camelKeyPath(protoPath: string): string {
  let previous = '';
  return protoPath.replace(/\[[^\]]*\]|[^.[\]]+/g, (token) => {
    if (token.startsWith('[')) return token;
    const mapKey = MAP_FIELDS.has(previous);
    previous = token;
    return mapKey ? token : token.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  });
}

const codeName = (code: Code) => (Code[code] ?? `code ${code}`).replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();

/**
 * The line to print when `definitions apply -f <file>` fails: the file's own problems as
 * readDefinitionFile reports them, and the service's `invalid argument` answers with the file and the
 * key as written in it (camelCase): `def.yaml: spec.guardrails.readOnlyPaths[0]: is outside the operator's policy: … (invalid argument)`.
 * Other errors keep their message and code.
 */
export function explainDefinitionError(file: string, err: unknown): string {
  if (err instanceof ConnectError) {
    const code = codeName(err.code);
    if (err.code !== Code.InvalidArgument) return `${err.rawMessage} (${code})`;
    const m = /^((?:spec|name|annotations)(?:[.[][^\s:]*)?): ([\s\S]*)$/.exec(err.rawMessage);
    return `${file}: ${m ? `${camelKeyPath(m[1]!)}: ${m[2]}` : err.rawMessage} (${code})`;
  }
  return err instanceof Error ? err.message : String(err);
}
