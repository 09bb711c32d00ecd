import { readFileSync } from 'node:fs';
import { create, ScalarType, type DescMessage } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { CreateDefinitionRequestSchema, StartWorkflowRunRequestSchema, WorkflowService } from '@ameide/contracts';
import { InvalidFieldError } from '../../src/errors.js';
import { GiB, KiB, LIMITS, MAX_REQUEST_BYTES, MiB, type FieldLimit } from '../../src/limits.js';
import { checkRequest } from '../../src/validation.js';

const DOCS = new URL('../../../../docs/definitions.md', import.meta.url);
const V1 = 'ameide.workflows.v1.';

/** The string, list and map fields of `desc` and the messages under it, as `<package>.<Message>.<field>`. */
function sizedFields(desc: DescMessage, seen = new Set<string>()): string[] {
  if (seen.has(desc.typeName)) return [];
  seen.add(desc.typeName);
  const out: string[] = [];
  for (const f of desc.fields) {
    const key = `${desc.typeName}.${f.name}`;
    if (f.fieldKind === 'list' || f.fieldKind === 'map' || (f.fieldKind === 'scalar' && f.scalar === ScalarType.STRING)) out.push(key);
    const sub = f.fieldKind === 'message' ? f.message : (f.fieldKind === 'list' || f.fieldKind === 'map') && f.message ? f.message : undefined;
    if (sub) out.push(...sizedFields(sub, seen));
  }
  return out;
}

const size = (n: number) =>
  n % (1024 * GiB) === 0
    ? `${n / 1024 / GiB} TiB`
    : n % GiB === 0
      ? `${n / GiB} GiB`
      : n % MiB === 0
        ? `${n / MiB} MiB`
        : n % KiB === 0
          ? `${n / KiB} KiB`
          : `${n} bytes`;

/** One row of the docs' limits table. */
function describeLimit(key: string, l: FieldLimit): string {
  const parts: string[] = [];
  if (l.entries !== undefined) parts.push(l.entries >= MAX_REQUEST_BYTES ? 'any number of entries' : `at most ${l.entries} entries`);
  if (l.keyBytes !== undefined) parts.push(l.keyBytes >= MAX_REQUEST_BYTES ? 'keys of any size within the request' : `keys at most ${size(l.keyBytes)}`);
  if (l.bytes !== undefined)
    parts.push(l.bytes >= MAX_REQUEST_BYTES ? 'any size within the request' : `${l.entries !== undefined ? 'each ' : ''}at most ${size(l.bytes)}`);
  if (l.min !== undefined) parts.push(`${l.min} to ${l.max}`);
  else if (l.max !== undefined) parts.push(`at most ${l.max}${key.endsWith('_bytes') ? ` (${size(l.max)})` : ''}`);
  if (l.jsonBytes !== undefined) parts.push(`at most ${size(l.jsonBytes)} as JSON`);
  if (l.nulAllowed) parts.push('NUL bytes allowed');
  return parts.join(', ');
}

/** The docs' limits table as the code says it must read. */
function limitsTable(): string {
  const rows = Object.entries(LIMITS).map(([key, l]) => `| \`${key.replace(V1, '')}\` | ${describeLimit(key, l)} |`);
  return ['| field | limit |', '| --- | --- |', ...rows].join('\n');
}

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidFieldError);
    return (err as Error).message;
  }
  throw new Error('accepted');
};

describe('request limits', () => {
  it('has a limit for every string, list and map field of every WorkflowService request', () => {
    const fields = [...new Set(WorkflowService.methods.flatMap((m) => sizedFields(m.input)))];
    expect(fields.filter((f) => !LIMITS[f])).toEqual([]);
  });

  it('keeps what it accepts startable: commands and environment within the kernel limits, a plan within the payload limit', () => {
    const spec = LIMITS[`${V1}DefinitionSpec`]!.jsonBytes!;
    const command = LIMITS[`${V1}DefinitionSpec.agent_command`]!.bytes!;
    const env = LIMITS[`${V1}DefinitionSpec.env`]!;
    // One argument or environment string at most 128 KiB; arguments and environment together well below 2 MiB.
    expect(command).toBeLessThanOrEqual(128 * KiB);
    expect(env.bytes! + env.keyBytes! + 1).toBeLessThanOrEqual(128 * KiB);
    expect(spec).toBeLessThanOrEqual(1 * MiB);
    // A plan: the definition, the work items and the methodology context, far below Temporal's 2 MiB.
    const items = LIMITS[`${V1}StartWorkflowRunRequest.work_items`]!.jsonBytes!;
    const ids = ['timebox_ids', 'goal_ids', 'work_item_ids', 'element_ids'].map((f) => LIMITS[`${V1}MethodologyContext.${f}`]!);
    const methodology = ids.reduce((n, l) => n + l.entries! * (l.bytes! + 3), 0) + LIMITS[`${V1}MethodologyContext.profile`]!.bytes!;
    expect(spec + items + 2 * methodology).toBeLessThan(1.5 * MiB);
  });

  it('is listed in docs/definitions.md as the code has it', () => {
    const docs = readFileSync(DOCS, 'utf8');
    const table = /<!-- limits table: generated from LIMITS[^>]*-->\n([\s\S]*?)\n<!-- end of limits table -->/.exec(docs)?.[1];
    expect(table, `docs/definitions.md should hold this table:\n${limitsTable()}`).toBe(limitsTable());
    expect(docs).toContain(`${MAX_REQUEST_BYTES} bytes`);
  });

  it('names the field by its proto path', () => {
    const def = (spec: object, annotations: Record<string, string> = {}) =>
      create(CreateDefinitionRequestSchema, { name: 'n', spec: { repoUrl: 'r', agentCommand: 'a', ...spec }, annotations });
    const check = (m: ReturnType<typeof def>) => () => checkRequest(CreateDefinitionRequestSchema, m);
    expect(refusal(check(def({ agentCommand: 'x\0' })))).toBe('spec.agent_command: must not contain NUL bytes');
    expect(refusal(check(def({ agentCommand: 'é'.repeat(40_000) })))).toBe('spec.agent_command: must be at most 65536 bytes (UTF-8), got 80000');
    expect(refusal(check(def({ guardrails: { allowedPaths: ['a', 'b\0'] } })))).toBe('spec.guardrails.allowed_paths[1]: must not contain NUL bytes');
    expect(refusal(check(def({ guardrails: { budgets: { maxFileBytes: 2n ** 64n - 1n } } })))).toBe(
      'spec.guardrails.budgets.max_file_bytes: must be at most 1099511627776',
    );
    expect(refusal(check(def({ env: { PATH_X: 'a\0' } })))).toBe('spec.env.PATH_X: must not contain NUL bytes');
    expect(refusal(check(def({}, { 'a key': 'x\0' })))).toBe('annotations["a key"]: must not contain NUL bytes');
    expect(refusal(check(def({}, { 'k\0': 'x' })))).toBe('annotations: keys must not contain NUL bytes (key "k\\u0000")');
    expect(refusal(check(def({ secrets: [{ name: 'A', fromEnv: 'A', phases: [42] }] })))).toBe('spec.secrets[0].phases[0]: 42 is not a Phase value');
    const run = create(StartWorkflowRunRequestSchema, { definition: 'd', workItems: Array.from({ length: 101 }, (_, i) => ({ id: `W-${i}` })) });
    expect(refusal(() => checkRequest(StartWorkflowRunRequestSchema, run))).toBe('work_items: must have at most 100 entries, got 101');
    // At the limit is fine.
    expect(() => checkRequest(CreateDefinitionRequestSchema, def({ agentCommand: 'x'.repeat(64 * KiB) }))).not.toThrow();
  });
});
