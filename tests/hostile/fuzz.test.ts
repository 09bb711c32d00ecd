import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  clone,
  create,
  fromBinary,
  fromJson,
  ScalarType,
  toBinary,
  type DescField,
  type DescMessage,
  type DescMethod,
  type JsonObject,
  type Message,
} from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { RunStatus, StatusUpdateKind, WorkflowService } from '@ameide/contracts';
import { createBearerInterceptor } from '@ameide/sdk';
import { DEFAULT_LIMIT, LIMITS, MAX_REQUEST_BYTES, type FieldLimit } from '../../services/workflows/src/limits.js';
import { MULTIPLY, startHarness, TEST_POLICY, type Harness } from '../support/harness.js';
import { sleep } from './support.js';

/**
 * Hostile input at the API edge, from outside: malformed JSON and protobuf over Connect, gRPC and
 * gRPC-Web, NUL bytes in every string field of every request, oversized fields and lists, numbers out
 * of range, requests over the byte limit. None may answer `internal`; each bad field answers
 * `invalid_argument` naming it; nothing stored changes. Then the connection timeouts.
 */

/** The generator's seed: fixed, so a failure replays; change it to explore. */
const SEED = 20240611;

/** mulberry32: a small deterministic PRNG. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n) };
}

type Protocol = 'connect' | 'grpc' | 'grpc-web';
const PROTOCOLS: Protocol[] = ['connect', 'grpc', 'grpc-web'];

/** How a call ended: `code` undefined when it succeeded. */
interface Answer {
  code: Code | undefined;
  message: string;
}

const codeName = (c: Code | undefined) => (c === undefined ? 'ok' : Code[c]);
const snake = (s: string) => s.replace(/[A-Z]/g, (c, i: number) => (i ? '_' : '') + c.toLowerCase());
const CODE_BY_NAME = new Map(Object.values(Code).flatMap((c) => (typeof c === 'number' ? [[snake(Code[c]), c] as const] : [])));

/** A gRPC length-prefixed frame. */
function frame(data: Uint8Array, flags = 0): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

const path = (m: DescMethod) => `/${m.parent.typeName}/${m.name}`;

/** Sends a raw request body over one protocol and reads the status the way that protocol carries it. */
async function raw(
  h: Harness,
  protocol: Protocol,
  m: DescMethod,
  body: Uint8Array,
  opts: { json?: boolean; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const token = m.name.startsWith('RecordStatusUpdate') ? h.tokens.service : h.tokens.acme;
  const streaming = m.methodKind !== 'unary';
  const sub = opts.json ? 'json' : 'proto';
  if (protocol === 'grpc') {
    // Room for a 50 MB request in the client's own buffers (Node's default is 10 MB per session).
    const session = http2.connect(h.apiUrl, { maxSessionMemory: 128 });
    session.on('error', () => {});
    try {
      const req = session.request({
        ':method': 'POST',
        ':path': path(m),
        'content-type': `application/grpc+${sub}`,
        te: 'trailers',
        authorization: `Bearer ${token}`,
        ...opts.headers,
      });
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      req.on('response', (x) => (headers = x));
      req.on('trailers', (x) => (trailers = x));
      req.resume();
      req.end(body);
      // The answer is complete with its trailers (or a trailers-only response), even while the request
      // is still being sent (a request refused as too large).
      await Promise.race([once(req, 'close'), once(req, 'end')]);
      const status = String(trailers['grpc-status'] ?? headers['grpc-status'] ?? '');
      const message = decodeURIComponent(String(trailers['grpc-message'] ?? headers['grpc-message'] ?? ''));
      return { code: status === '0' ? undefined : (Number(status) as Code), message };
    } finally {
      session.destroy();
    }
  }
  const contentType = protocol === 'grpc-web' ? `application/grpc-web+${sub}` : streaming ? `application/connect+${sub}` : `application/${sub}`;
  const res = await fetch(h.apiUrl + path(m), {
    method: 'POST',
    headers: { 'content-type': contentType, 'connect-protocol-version': '1', authorization: `Bearer ${token}`, ...opts.headers },
    body: new Uint8Array(body),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (protocol === 'connect' && !streaming) {
    if (res.ok) return { code: undefined, message: '' };
    const err = JSON.parse(bytes.toString('utf8')) as { code: string; message?: string };
    return { code: CODE_BY_NAME.get(err.code), message: err.message ?? '' };
  }
  // Enveloped responses: the last frame carries the status (gRPC-Web trailers, Connect end-stream JSON).
  let status = res.headers.get('grpc-status') ?? undefined;
  let message = decodeURIComponent(res.headers.get('grpc-message') ?? '');
  for (let at = 0; at + 5 <= bytes.length;) {
    const flags = bytes[at]!;
    const len = bytes.readUInt32BE(at + 1);
    const data = bytes.subarray(at + 5, at + 5 + len);
    at += 5 + len;
    if (!(flags & 0x80) && !(flags & 0x02)) continue;
    if (protocol === 'grpc-web') {
      const t = Object.fromEntries(
        data
          .toString('utf8')
          .split('\r\n')
          .filter(Boolean)
          .map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      status = t['grpc-status'];
      message = decodeURIComponent(t['grpc-message'] ?? '');
    } else {
      const end = JSON.parse(data.toString('utf8')) as { error?: { code: string; message?: string } };
      return end.error ? { code: CODE_BY_NAME.get(end.error.code), message: end.error.message ?? '' } : { code: undefined, message: '' };
    }
  }
  if (!res.ok && status === undefined) return { code: Code.Unknown, message: `HTTP ${res.status}` };
  return { code: status === undefined || status === '0' ? undefined : (Number(status) as Code), message };
}

/** The body of one request message as a protocol sends it (enveloped but for Connect unary). */
const body = (protocol: Protocol, m: DescMethod, bytes: Uint8Array) => (protocol === 'connect' && m.methodKind === 'unary' ? Buffer.from(bytes) : frame(bytes));

type AnyClient = Client<typeof WorkflowService>;

/** Calls `m` with `req` through a typed client; a watch is read to its end (or 5 s). */
async function call(client: AnyClient, m: DescMethod, req: Message): Promise<Answer> {
  const fn = (client as unknown as Record<string, (r: Message, o: object) => unknown>)[m.localName]!;
  try {
    if (m.methodKind === 'server_streaming') {
      for await (const _ of fn(req, { signal: AbortSignal.timeout(5000) }) as AsyncIterable<unknown>);
    } else await fn(req, {});
    return { code: undefined, message: '' };
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
}

// ---------------------------------------------------------------------------------------------------
// Targets: every field of a request message, by proto path
// ---------------------------------------------------------------------------------------------------

/** One step into a message: a field, and for lists and maps the entry (index or key). */
interface Step {
  field: DescField;
  at?: number | string;
}

interface Target {
  steps: Step[];
  /** The proto path the service names, e.g. `spec.guardrails.allowed_paths[0]`. */
  path: string;
  field: DescField;
  kind: 'string' | 'number' | 'enum' | 'list' | 'map' | 'mapKey' | 'message';
  limit: FieldLimit | undefined;
}

const limitOf = (f: DescField) => LIMITS[`${f.parent.typeName}.${f.name}`];

function* targets(desc: DescMessage, steps: Step[] = [], prefix = '', depth = 0): Generator<Target> {
  for (const f of desc.fields) {
    const p = prefix ? `${prefix}.${f.name}` : f.name;
    const here = [...steps, { field: f }];
    const limit = limitOf(f);
    switch (f.fieldKind) {
      case 'scalar':
        if (f.scalar === ScalarType.STRING) yield { steps: here, path: p, field: f, kind: 'string', limit };
        else if (f.scalar !== ScalarType.BOOL && f.scalar !== ScalarType.BYTES) yield { steps: here, path: p, field: f, kind: 'number', limit };
        break;
      case 'enum':
        yield { steps: here, path: p, field: f, kind: 'enum', limit };
        break;
      case 'message':
        yield { steps: here, path: p, field: f, kind: 'message', limit: LIMITS[f.message.typeName] };
        if (depth < 6) yield* targets(f.message, here, p, depth + 1);
        break;
      case 'list': {
        yield { steps: here, path: p, field: f, kind: 'list', limit };
        const entry = [...steps, { field: f, at: 0 }];
        if (f.listKind === 'message') yield* targets(f.message, entry, `${p}[0]`, depth + 1);
        else if (f.listKind === 'enum') yield { steps: entry, path: `${p}[0]`, field: f, kind: 'enum', limit };
        else if (f.scalar === ScalarType.STRING) yield { steps: entry, path: `${p}[0]`, field: f, kind: 'string', limit };
        break;
      }
      case 'map':
        yield { steps: here, path: p, field: f, kind: 'map', limit };
        yield { steps: here, path: p, field: f, kind: 'mapKey', limit };
        if (f.mapKind === 'scalar' && f.scalar === ScalarType.STRING)
          yield { steps: [...steps, { field: f, at: 'k' }], path: `${p}.k`, field: f, kind: 'string', limit };
        break;
    }
  }
}

/** Sets what `steps` lead to (creating the messages on the way) to `value`. */
function setAt(msg: Message, steps: Step[], value: unknown): void {
  let cur = msg as unknown as Record<string, unknown>;
  steps.forEach((s, i) => {
    const last = i === steps.length - 1;
    const f = s.field;
    const name = f.localName;
    if (s.at === undefined) {
      if (last) cur[name] = value;
      else cur = (cur[name] ??= create((f as { message: DescMessage }).message)) as Record<string, unknown>;
      return;
    }
    const container = cur[name] as Record<string | number, unknown>;
    if (last) container[s.at] = value;
    else cur = (container[s.at] ??= create((f as { message: DescMessage }).message)) as Record<string, unknown>;
  });
}

// ---------------------------------------------------------------------------------------------------
// Valid requests, one per RPC, that a missed check would turn into a change of what is stored
// ---------------------------------------------------------------------------------------------------

function baseRequests(ids: { planId: string; runId: string }): Record<string, JsonObject> {
  // RecordStatusUpdates: one run's updates (a run that does not exist: nothing is stored).
  const batchRunId = randomUUID();
  const spec = {
    repoUrl: '/srv/repos/fuzz.git',
    defaultBranch: 'main',
    installCommand: 'true',
    agentCommand: 'true',
    testCommand: 'false',
    branchPrefix: 'ameide/',
    phaseTimeoutSeconds: 60,
    env: { A: 'b' },
    guardrails: {
      sandbox: 'bubblewrap',
      allowedPaths: ['src/**'],
      deniedPaths: ['.git/**'],
      network: { install: true },
      budgets: { maxCommands: 3, runTimeoutSeconds: 600, maxOutputBytes: '1024', maxProcesses: 64, maxFileBytes: '1048576' },
      packageCaches: ['npm'],
      readOnlyPaths: [TEST_POLICY.AMEIDE_SANDBOX_READ_ONLY_PATHS],
      egressHosts: ['registry.npmjs.org'],
    },
    secrets: [{ name: 'TOKEN', phases: ['PHASE_AGENT'], fromEnv: 'DEPLOY_TOKEN' }],
  };
  const work = {
    workItems: [{ ...MULTIPLY, id: 'CALC-9' }],
    methodology: { profile: 'scrum', timeboxIds: ['s1'], goalIds: ['g1'], workItemIds: ['CALC-9'], elementIds: ['e1'] },
    trigger: 'TRIGGER_MANUAL',
    annotations: { team: 'fuzz' },
  };
  return {
    CreateDefinition: { name: 'fuzz-created', spec, annotations: { team: 'fuzz' } },
    ApplyDefinition: { name: 'keep', spec, annotations: { team: 'fuzz' } },
    GetDefinition: { idOrName: 'keep' },
    ListDefinitions: { pageSize: 10 },
    DeleteDefinition: { idOrName: 'a-definition-the-fuzzer-never-made' },
    CreatePlan: { definition: 'keep', ...work },
    GetPlan: { id: ids.planId },
    ListPlans: { definition: 'keep', workItemId: 'CALC-1', pageSize: 10 },
    StartWorkflowRun: { definition: 'keep', ...work },
    GetWorkflowRun: { id: ids.runId },
    ListWorkflowRuns: { statuses: ['RUN_STATUS_QUEUED'], workItemId: 'CALC-1', definition: 'keep', pageSize: 10 },
    CancelWorkflowRun: { id: ids.runId, reason: 'fuzz' },
    WatchWorkflowRun: { id: randomUUID(), fromSequence: '1' },
    DiffPlans: { planId: ids.planId, otherPlanId: ids.planId },
    ApprovePlan: { id: ids.planId, reason: 'fuzz' },
    RejectPlan: { id: ids.planId, reason: 'fuzz' },
    ListPreviews: { workItemId: 'CALC-1', runId: ids.runId, state: 'live', pageSize: 10 },
    RecordPreview: {
      runId: randomUUID(),
      state: 'live',
      provider: 'local',
      target: '127.0.0.1:9',
      url: 'https://preview.example.com/',
      aliasUrl: 'https://alias.example.com/',
      expireTime: '2030-01-01T00:00:00Z',
      reason: 'fuzz',
    },
    ListPullRequests: { workItemId: 'CALC-1', state: 'open', pageSize: 10 },
    GetPullRequest: { id: '#1' },
    RecordPullRequest: {
      runId: randomUUID(),
      provider: 'github',
      number: 7,
      url: 'https://github.com/acme/app/pull/7',
      title: 't',
      body: 'b',
      baseBranch: 'main',
      headBranch: 'ameide/calc-1',
      headCommit: 'c0ffee',
      state: 'open',
      repository: 'acme/app',
    },
    GetRunDiff: { id: ids.runId, pageSize: 10, pageToken: 'ZDE6MDowMDAwMDAwMDAwMDAwMDAw', statOnly: false },
    RecordRunOutput: { runId: randomUUID(), phase: 'PHASE_AGENT', offset: '0', data: 'fuzz\n' },
    StreamRunOutput: { runId: randomUUID(), phase: 'PHASE_AGENT', follow: false, tailLines: 10 },
    RecordStatusUpdate: {
      update: {
        runId: randomUUID(),
        sequence: '1',
        kind: 'STATUS_UPDATE_KIND_PHASE_FINISHED',
        phase: 'PHASE_AGENT',
        phaseState: 'PHASE_STATE_SUCCEEDED',
        runStatus: 'RUN_STATUS_RUNNING',
        exitCode: 0,
        durationMs: '5',
        outputTail: 'ok',
        message: 'm',
        attributes: { k: 'v' },
        summary: {
          branch: 'b',
          baseCommit: 'c',
          headCommit: 'd',
          filesChanged: 1,
          transcriptsUri: 'file:///x',
          handoffUri: 'file:///h',
          handoffSha256: 'ab',
          sandbox: 'bubblewrap',
          budgetExceeded: 'x',
          policyViolations: ['p'],
        },
        time: '2024-01-01T00:00:00Z',
      },
    },
    RecordStatusUpdates: {
      updates: [
        { runId: batchRunId, sequence: '1', kind: 'STATUS_UPDATE_KIND_RUN_STARTED', message: 'm', attributes: { k: 'v' } },
        { runId: batchRunId, sequence: '2', kind: 'STATUS_UPDATE_KIND_PHASE_STARTED', phase: 'PHASE_AGENT', outputTail: 'ok' },
      ],
    },
  };
}

/** A request of `m` with one field set to `value`. */
interface Case {
  method: DescMethod;
  request: Message;
  what: string;
  /** The message the answer must start with (invalid_argument); undefined: any answer but internal. */
  expect?: string;
  /** JSON cannot carry it (a Timestamp outside 0001..9999 has no JSON form): binary clients only. */
  binaryOnly: boolean;
}

function caseOf(method: DescMethod, base: Message, t: Target, value: unknown, what: string, expect?: string): Case {
  const request = clone(method.input, base);
  setAt(request, t.steps, value);
  const binaryOnly = t.steps.some((s) => s.field.parent.typeName === 'google.protobuf.Timestamp');
  return { method, request, what: `${method.name} ${t.path}: ${what}`, expect, binaryOnly };
}

const UINT64_MAX = 2n ** 64n - 1n;
const is64 = (f: DescField) =>
  [ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64].includes((f as { scalar: ScalarType }).scalar);
const isUnsigned = (f: DescField) =>
  [ScalarType.UINT32, ScalarType.UINT64, ScalarType.FIXED32, ScalarType.FIXED64].includes((f as { scalar: ScalarType }).scalar);
const numberValue = (f: DescField, n: number | bigint) => (is64(f) ? BigInt(n) : Number(n));

/** A value of the list's entry type (or a map's value type), for filling lists and maps. */
function entryOf(f: DescField, i: number): unknown {
  if ((f.fieldKind === 'list' && f.listKind === 'message') || (f.fieldKind === 'map' && f.mapKind === 'message'))
    return create((f as { message: DescMessage }).message);
  if ((f.fieldKind === 'list' && f.listKind === 'enum') || (f.fieldKind === 'map' && f.mapKind === 'enum')) return 1;
  return `v${i}`;
}

/** Every bad-field case of every RPC: NUL bytes, sizes, entries, numbers, unknown enum values. */
function fieldCases(bases: Record<string, JsonObject>): Case[] {
  const cases: Case[] = [];
  for (const method of WorkflowService.methods) {
    const json = bases[method.name];
    if (!json) throw new Error(`no valid request of ${method.name} to start from: add one to baseRequests`);
    const base = fromJson(method.input, json);
    for (const t of targets(method.input)) {
      const l = t.limit;
      switch (t.kind) {
        case 'string': {
          const nul = l?.nulAllowed ? undefined : `${t.path}: must not contain NUL bytes`;
          cases.push(caseOf(method, base, t, 'a\u0000b', 'NUL byte', nul));
          const max = l?.bytes ?? DEFAULT_LIMIT.bytes;
          if (max < MAX_REQUEST_BYTES / 2) {
            cases.push(caseOf(method, base, t, 'é'.repeat(Math.ceil((max + 1) / 2)), `${max + 1}+ bytes`, `${t.path}: must be at most ${max} bytes`));
          }
          break;
        }
        case 'mapKey': {
          const key = (k: string) => ({ [k]: entryOf(t.field, 0) });
          if (!l?.nulAllowed) cases.push(caseOf(method, base, t, key('k\u0000'), 'NUL in a key', `${t.path}: keys must not contain NUL bytes`));
          const max = l?.keyBytes ?? DEFAULT_LIMIT.keyBytes;
          if (max < MAX_REQUEST_BYTES / 2)
            cases.push(caseOf(method, base, t, key('k'.repeat(max + 1)), `key of ${max + 1} bytes`, `${t.path}: keys must be at most ${max} bytes`));
          break;
        }
        case 'list':
        case 'map': {
          const max = l?.entries ?? DEFAULT_LIMIT.entries;
          if (max > 100_000) break;
          const entries = Array.from({ length: max + 1 }, (_, i) => entryOf(t.field, i));
          const value = t.kind === 'list' ? entries : Object.fromEntries(entries.map((v, i) => [`k${i}`, v]));
          cases.push(caseOf(method, base, t, value, `${max + 1} entries`, `${t.path}: must have at most ${max} entries`));
          break;
        }
        case 'number': {
          const max = l?.max ?? (is64(t.field) ? Number.MAX_SAFE_INTEGER : undefined);
          const min = l?.min ?? (is64(t.field) && !isUnsigned(t.field) ? -Number.MAX_SAFE_INTEGER : undefined);
          if (max !== undefined) cases.push(caseOf(method, base, t, numberValue(t.field, BigInt(max) + 1n), `${max} + 1`, `${t.path}: must be at most ${max}`));
          if (max !== undefined && is64(t.field) && isUnsigned(t.field))
            cases.push(caseOf(method, base, t, UINT64_MAX, '2^64 - 1', `${t.path}: must be at most ${max}`));
          if (min !== undefined && (min > 0 || !isUnsigned(t.field)))
            cases.push(caseOf(method, base, t, numberValue(t.field, BigInt(min) - 1n), `${min} - 1`, `${t.path}: must be at least ${min}`));
          break;
        }
        case 'enum':
          cases.push(caseOf(method, base, t, 12345, 'unknown enum value', `${t.path}: 12345 is not a`));
          break;
        case 'message':
          if (l?.jsonBytes !== undefined && t.field.fieldKind === 'message' && t.field.message.typeName.endsWith('DefinitionSpec')) {
            // Every field within its own limit, the whole too large: commands and env at their limits.
            const big = create(t.field.message, {
              ...(base as unknown as Record<string, object>)[t.field.localName],
              installCommand: 'x'.repeat(64 * 1024),
              agentCommand: 'x'.repeat(64 * 1024),
              testCommand: 'x'.repeat(64 * 1024),
              env: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`V${i}`, 'x'.repeat(16 * 1024)])),
            });
            cases.push(caseOf(method, base, t, big, 'too large as a whole', `${t.path}: must be at most ${l.jsonBytes} bytes as JSON`));
          }
          break;
      }
      if (t.kind === 'list' && l?.jsonBytes !== undefined && t.field.fieldKind === 'list' && t.field.listKind === 'message') {
        const n = Math.min(l.entries ?? 100, 100);
        const items = Array.from({ length: n }, (_, i) =>
          create(t.field.message!, { ...MULTIPLY, id: `W-${i}`, description: 'd'.repeat(Math.ceil(l.jsonBytes! / n)) }),
        );
        cases.push(caseOf(method, base, t, items, 'too large as a whole', `${t.path}: must be at most ${l.jsonBytes} bytes as JSON`));
      }
    }
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------------
// Malformed bodies
// ---------------------------------------------------------------------------------------------------

function parses(m: DescMethod, bytes: Uint8Array): boolean {
  try {
    fromBinary(m.input, bytes);
    return true;
  } catch {
    return false;
  }
}

/** Bodies that are not a valid encoding of `m`'s request: truncated, flipped, garbage, invalid UTF-8, deep groups. */
function malformedProtobuf(m: DescMethod, valid: Uint8Array, rnd: ReturnType<typeof prng>, n: number): Array<{ what: string; bytes: Uint8Array }> {
  const out: Array<{ what: string; bytes: Uint8Array }> = [
    // Field 1 (a string in every request but ListWorkflowRuns/ListDefinitions) with invalid UTF-8.
    { what: 'invalid UTF-8 in field 1', bytes: Uint8Array.from([0x0a, 0x02, 0xff, 0xfe]) },
    { what: 'length beyond the end', bytes: Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41]) },
    { what: 'end-group tag without a start', bytes: Uint8Array.from([0x0c]) },
    { what: 'wire type 7', bytes: Uint8Array.from([0x0f]) },
    { what: 'field number 0', bytes: Uint8Array.from([0x00, 0x01]) },
    { what: 'varint of 11 bytes', bytes: Uint8Array.from([0x08, ...Array<number>(10).fill(0xff), 0x01]) },
    // 100 000 nested unknown groups (start-group tag of field 31): deeper than any parser should recurse.
    { what: 'deeply nested groups', bytes: Uint8Array.from({ length: 200_000 }, (_, i) => (i % 2 ? 0x01 : 0xfb)) },
  ];
  if (valid.length > 1) out.push({ what: 'truncated by one byte', bytes: valid.subarray(0, valid.length - 1) });
  for (let tries = 0; out.length < n + 8 && tries < 50 * n; tries++) {
    const b = Uint8Array.from(valid);
    const how = rnd.int(3);
    let what: string;
    let bytes: Uint8Array;
    if (how === 0) {
      const cut = 1 + rnd.int(Math.max(1, b.length - 1));
      what = `truncated at ${cut}`;
      bytes = b.subarray(0, cut);
    } else if (how === 1) {
      const flips = 1 + rnd.int(4);
      for (let i = 0; i < flips; i++) b[rnd.int(b.length)] = rnd.int(256);
      what = `${flips} bytes changed`;
      bytes = b;
    } else {
      bytes = Uint8Array.from({ length: 1 + rnd.int(64) }, () => rnd.int(256));
      what = `${bytes.length} random bytes`;
    }
    if (!parses(m, bytes)) out.push({ what, bytes });
  }
  return out.filter((x) => !parses(m, x.bytes));
}

/** JSON bodies no request message can be read from. */
const MALFORMED_JSON: Array<{ what: string; body: string | Uint8Array }> = [
  { what: 'cut short', body: '{"name": "x", "spec": {' },
  { what: 'an array', body: '[]' },
  { what: 'a string', body: '"\\u0000"' },
  { what: 'a number', body: '5' },
  { what: 'invalid UTF-8', body: Uint8Array.from([0xff, 0xfe, 0xfd]) },
  { what: 'nesting 100 000 deep', body: '['.repeat(100_000) + ']'.repeat(100_000) },
];

/** JSON bodies of the wrong shape for one request type. */
const MISTYPED_JSON: Record<string, string[]> = {
  CreateDefinition: [
    '{"name": 5}',
    '{"spec": 5}',
    '{"spec": {"phaseTimeoutSeconds": -1}}',
    '{"spec": {"phaseTimeoutSeconds": 1e100}}',
    '{"spec": {"phaseTimeoutSeconds": "many"}}',
    '{"spec": {"guardrails": {"budgets": {"maxFileBytes": "18446744073709551616"}}}}',
    '{"spec": {"env": {"A": 5}}}',
    '{"annotations": ["x"]}',
    '{"name": "a\\ud800b"}',
    '{"annotations": {"\\ud800": "v"}}',
  ],
  ListWorkflowRuns: ['{"pageSize": -1}', '{"pageSize": 4294967296}', '{"statuses": 5}', '{"statuses": [true]}'],
  WatchWorkflowRun: ['{"id": 5}', '{"fromSequence": "abc"}', '{"fromSequence": -1}'],
};

/** What is stored, to compare before and after. */
async function storedState(h: Harness) {
  const defs = (await h.acme.listDefinitions({ pageSize: 1000 })).definitions.map((d) => ({
    name: d.name,
    version: d.version,
    spec: d.spec,
    annotations: d.annotations,
  }));
  const plans = (await h.acme.listPlans({ pageSize: 1000 })).plans.map((p) => p.id).sort();
  const runs = (await h.acme.listWorkflowRuns({ pageSize: 1000 })).runs.map((r) => `${r.id} ${r.status} ${r.lastSequence}`).sort();
  return { defs, plans, runs };
}

describe('hostile input at the API edge', () => {
  let h: Harness;
  let clients: Record<'json' | 'grpc' | 'webJson', { acme: AnyClient; service: AnyClient }>;
  let ids: { planId: string; runId: string };
  let before: Awaited<ReturnType<typeof storedState>>;
  const logged: unknown[][] = [];

  beforeAll(async () => {
    console.log(`fuzz seed ${SEED}`);
    h = await startHarness();
    const make = (kind: 'json' | 'grpc' | 'webJson', token: string) => {
      const interceptors = [createBearerInterceptor(token)];
      const transport =
        kind === 'grpc'
          ? createGrpcTransport({ baseUrl: h.apiUrl, interceptors })
          : kind === 'webJson'
            ? createGrpcWebTransport({ baseUrl: h.apiUrl, httpVersion: '1.1', useBinaryFormat: false, interceptors })
            : createConnectTransport({ baseUrl: h.apiUrl, httpVersion: '1.1', interceptors });
      return createClient(WorkflowService, transport);
    };
    clients = {
      json: { acme: make('json', h.tokens.acme), service: make('json', h.tokens.service) },
      grpc: { acme: make('grpc', h.tokens.acme), service: make('grpc', h.tokens.service) },
      webJson: { acme: make('webJson', h.tokens.acme), service: make('webJson', h.tokens.service) },
    };
    await h.acme.applyDefinition({
      name: 'keep',
      annotations: { team: 'kept' },
      spec: { repoUrl: '/srv/repos/keep.git', agentCommand: 'true', testCommand: 'true' },
    });
    const plan = (await h.acme.createPlan({ definition: 'keep', workItems: [MULTIPLY] })).plan!;
    const run = (await h.acme.startWorkflowRun({ planId: plan.id })).run!;
    ids = { planId: plan.id, runId: run.id };
    before = await storedState(h);
    // The service runs in this process: anything it logs as an error (with its stack) is caught here.
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void logged.push(args));
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await h?.stop();
  });

  it('answers a bad field of any request invalid_argument naming the field, over Connect JSON, gRPC and gRPC-Web JSON', async () => {
    const cases = fieldCases(baseRequests(ids));
    const wrong: string[] = [];
    for (const [kind, c] of Object.entries(clients)) {
      for (let i = 0; i < cases.length; i += 16) {
        await Promise.all(
          cases.slice(i, i + 16).map(async (k) => {
            if (k.binaryOnly && kind !== 'grpc') return;
            const client = k.method.name.startsWith('RecordStatusUpdate') ? c.service : c.acme;
            const a = await call(client, k.method, k.request);
            const ok = k.expect ? a.code === Code.InvalidArgument && a.message.startsWith(k.expect) : a.code !== Code.Internal && a.code !== Code.Unknown;
            if (!ok)
              wrong.push(`${kind} ${k.what}: ${codeName(a.code)} "${a.message.slice(0, 200)}"${k.expect ? ` (expected invalid_argument "${k.expect}…")` : ''}`);
          }),
        );
      }
    }
    expect(wrong).toEqual([]);
    expect(cases.length).toBeGreaterThan(200);
  });

  it('answers malformed protobuf invalid_argument over Connect, gRPC and gRPC-Web', async () => {
    const rnd = prng(SEED);
    const bases = baseRequests(ids);
    const wrong: string[] = [];
    let sent = 0;
    for (const m of WorkflowService.methods) {
      const valid = toBinary(m.input, fromJson(m.input, bases[m.name]!));
      for (const bad of malformedProtobuf(m, valid, rnd, 6)) {
        for (const protocol of PROTOCOLS) {
          const a = await raw(h, protocol, m, body(protocol, m, bad.bytes));
          sent++;
          if (a.code !== Code.InvalidArgument || !a.message.startsWith(`request: not a valid ${m.input.name} message`))
            wrong.push(`${protocol} ${m.name} ${bad.what}: ${codeName(a.code)} "${a.message.slice(0, 200)}"`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(sent).toBeGreaterThan(400);
  });

  it('answers malformed JSON invalid_argument over Connect, gRPC and gRPC-Web', async () => {
    const wrong: string[] = [];
    let sent = 0;
    for (const m of WorkflowService.methods) {
      const bodies = [...MALFORMED_JSON, ...(MISTYPED_JSON[m.name] ?? []).map((b) => ({ what: b, body: b }))];
      for (const j of bodies) {
        const bytes = typeof j.body === 'string' ? Buffer.from(j.body) : j.body;
        for (const protocol of PROTOCOLS) {
          const a = await raw(h, protocol, m, body(protocol, m, bytes), { json: true });
          sent++;
          if (a.code !== Code.InvalidArgument) wrong.push(`${protocol} ${m.name} ${j.what}: ${codeName(a.code)} "${a.message.slice(0, 200)}"`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(sent).toBeGreaterThan(200);
    // Text JSON can hold what protobuf's binary form cannot: NUL bytes.
    const get = WorkflowService.method.getDefinition;
    for (const protocol of PROTOCOLS) {
      const nul = await raw(h, protocol, get, body(protocol, get, Buffer.from('{"idOrName": "a\\u0000b"}')), { json: true });
      expect([protocol, nul.code, nul.message]).toEqual([protocol, Code.InvalidArgument, 'id_or_name: must not contain NUL bytes']);
    }
  });

  it('answers broken framing and compression without internal', async () => {
    const m = WorkflowService.method.getDefinition;
    const valid = toBinary(m.input, fromJson(m.input, { idOrName: 'keep' }));
    const gzipHeaders = { grpc: { 'grpc-encoding': 'gzip' }, 'grpc-web': { 'grpc-encoding': 'gzip' }, connect: { 'content-encoding': 'gzip' } };
    const wrong: string[] = [];
    for (const protocol of PROTOCOLS) {
      const cases: Array<{ what: string; body: Uint8Array; headers?: Record<string, string> }> = [
        { what: 'garbage gzip', body: body(protocol, m, Buffer.from('not gzip at all')), headers: gzipHeaders[protocol] },
        { what: 'truncated gzip', body: body(protocol, m, Uint8Array.from([0x1f, 0x8b, 0x08, 0x00, 0x00])), headers: gzipHeaders[protocol] },
      ];
      if (protocol !== 'connect') {
        cases.push({ what: 'a compressed frame without an encoding', body: frame(valid, 1) });
        cases.push({ what: 'a frame promising more than it holds', body: frame(valid).subarray(0, 7) });
        cases.push({ what: 'half a frame header', body: Buffer.from([0, 0, 0]) });
        cases.push({ what: 'two messages for a unary call', body: Buffer.concat([frame(valid), frame(valid)]) });
        cases.push({ what: 'no message', body: Buffer.alloc(0) });
      }
      for (const c of cases) {
        const a = await raw(h, protocol, m, c.body, { headers: c.headers });
        if (a.code === Code.Internal || a.code === Code.Unknown || a.code === undefined)
          wrong.push(`${protocol} ${c.what}: ${codeName(a.code)} "${a.message}"`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('refuses a request over the byte limit (resource_exhausted) and oversized fields below it (invalid_argument), storing nothing', async () => {
    const m = WorkflowService.method.applyDefinition;
    const request = (bytes: number) => fromJson(m.input, { name: 'keep', spec: { repoUrl: '/srv/repos/keep.git', agentCommand: 'x'.repeat(bytes) } });
    const over = (a: Answer) => [codeName(a.code), a.message.replace(/\d+/g, 'N')];
    const resourceExhausted = [codeName(Code.ResourceExhausted), expect.stringMatching(/larger than configured readMaxBytes N$/)];
    for (const kind of ['json', 'grpc'] as const) {
      expect(over(await call(clients[kind].acme, m, request(MAX_REQUEST_BYTES + 1024)))).toEqual(resourceExhausted);
      const a = await call(clients[kind].acme, m, request(1024 * 1024));
      expect([codeName(a.code), a.message]).toEqual(['InvalidArgument', 'spec.agent_command: must be at most 65536 bytes (UTF-8), got 1048576']);
    }
    // 10 MB and 50 MB, raw (the clients' own buffers stop short of that).
    for (const size of [10_000_000, 50_000_000]) {
      for (const protocol of PROTOCOLS) {
        const bytes =
          protocol === 'grpc' || protocol === 'grpc-web'
            ? toBinary(m.input, request(size))
            : Buffer.from(JSON.stringify({ name: 'keep', spec: { agentCommand: 'x'.repeat(size) } }));
        expect([protocol, size, ...over(await raw(h, protocol, m, body(protocol, m, bytes), { json: protocol === 'connect' }))]).toEqual([
          protocol,
          size,
          ...resourceExhausted,
        ]);
      }
    }
  });

  it('answers an HTTP/1.0 request without a Host header and keeps serving', async () => {
    const socket = net.connect(Number(new URL(h.apiUrl).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `POST ${path(WorkflowService.method.listDefinitions)} HTTP/1.0\r\ncontent-type: application/json\r\nauthorization: Bearer ${h.tokens.acme}\r\ncontent-length: 2\r\n\r\n{}`,
    );
    let response = '';
    socket.on('data', (d: Buffer) => (response += d.toString('latin1')));
    await once(socket, 'close');
    expect(response).toMatch(/^HTTP\/1\.[01] \d{3}/);
    expect((await h.acme.listDefinitions({})).definitions.length).toBeGreaterThan(0);
  });

  it('changed nothing that was stored, and logged no error', async () => {
    expect(await storedState(h)).toEqual(before);
    expect(logged.map((args) => args.map(String).join(' ').slice(0, 300))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Connection timeouts
// ---------------------------------------------------------------------------------------------------

const HEADERS_S = 1;
const REQUEST_S = 2;
const IDLE_S = 1;
/** How much later than its timeout a connection may close: Node checks HTTP/1.1 timeouts every 250 ms here, and the suite runs beside CPU-heavy tests. */
const SLACK_MS = 2500;

/** Opens a TCP connection, writes `data`, and resolves with the ms until the server closed it (and what it answered). */
async function closedAfter(h: Harness, data: Buffer | string, budgetMs = 10_000): Promise<{ ms: number; answer: string }> {
  const socket = net.connect(Number(new URL(h.apiUrl).port), '127.0.0.1');
  await once(socket, 'connect');
  const t0 = Date.now();
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  socket.on('error', () => {});
  if (data.length) socket.write(data);
  const closed = once(socket, 'close').then(() => Date.now() - t0);
  const gaveUp = sleep(budgetMs).then(() => Infinity);
  const ms = await Promise.race([closed, gaveUp]);
  socket.destroy();
  return { ms, answer };
}

const H2_PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

describe('connection timeouts', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      serviceEnv: {
        AMEIDE_API_HEADERS_TIMEOUT_SECONDS: String(HEADERS_S),
        AMEIDE_API_REQUEST_TIMEOUT_SECONDS: String(REQUEST_S),
        AMEIDE_API_IDLE_TIMEOUT_SECONDS: String(IDLE_S),
      },
    });
  });
  afterAll(() => h?.stop());

  it('closes connections that send nothing, half a header, half a body, or nothing more, within their timeouts', async () => {
    const listPath = path(WorkflowService.method.listDefinitions);
    const auth = `authorization: Bearer ${h.tokens.acme}\r\n`;
    const [silent, halfPreface, halfHeader, halfBody, keptAlive, h2Idle] = await Promise.all([
      closedAfter(h, ''),
      closedAfter(h, 'PRI * HT'),
      closedAfter(h, `POST ${listPath} HTTP/1.1\r\nhost: x\r\ncontent-ty`),
      closedAfter(h, `POST ${listPath} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n${auth}content-length: 10\r\n\r\n{}`),
      closedAfter(h, `POST ${listPath} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n${auth}content-length: 2\r\n\r\n{}`),
      closedAfter(h, Buffer.concat([Buffer.from(H2_PREFACE), EMPTY_SETTINGS])),
    ]);
    const within = (r: { ms: number }, s: number) => [r.ms >= s * 1000 - 100, r.ms <= s * 1000 + SLACK_MS, r.ms];
    expect(within(silent, HEADERS_S)).toEqual([true, true, silent.ms]);
    expect(within(halfPreface, HEADERS_S)).toEqual([true, true, halfPreface.ms]);
    expect(within(halfHeader, HEADERS_S)).toEqual([true, true, halfHeader.ms]);
    expect(halfHeader.answer).toMatch(/^HTTP\/1\.1 408/);
    expect(within(halfBody, REQUEST_S)).toEqual([true, true, halfBody.ms]);
    // A complete request is answered, then the idle connection is closed.
    expect(keptAlive.answer).toMatch(/^HTTP\/1\.1 200/);
    expect(within(keptAlive, IDLE_S)).toEqual([true, true, keptAlive.ms]);
    expect(within(h2Idle, IDLE_S)).toEqual([true, true, h2Idle.ms]);
  });

  it('resets an HTTP/2 stream whose request does not arrive in time, then closes the idle session', async () => {
    const session = http2.connect(h.apiUrl);
    session.on('error', () => {});
    const t0 = Date.now();
    const req = session.request({
      ':method': 'POST',
      ':path': path(WorkflowService.method.listDefinitions),
      'content-type': 'application/grpc',
      te: 'trailers',
      authorization: `Bearer ${h.tokens.acme}`,
    });
    req.on('error', () => {});
    req.write(Buffer.from([0, 0, 0, 0, 10]));
    await once(req, 'close');
    const reset = Date.now() - t0;
    await once(session, 'close');
    const closed = Date.now() - t0;
    expect(reset).toBeGreaterThanOrEqual(REQUEST_S * 1000 - 100);
    expect(reset).toBeLessThanOrEqual(REQUEST_S * 1000 + SLACK_MS);
    expect(closed - reset).toBeLessThanOrEqual(IDLE_S * 1000 + SLACK_MS);
  });

  it('keeps a quiet watch open longer than every timeout while its run goes on, over HTTP/1.1 and HTTP/2', async () => {
    await h.acme.applyDefinition({ name: 'watched', spec: { repoUrl: '/srv/repos/watched.git', agentCommand: 'true' } });
    const run = (await h.acme.startWorkflowRun({ definition: 'watched', workItems: [MULTIPLY] })).run!;
    const watchers = (['connect', 'grpc'] as const).map(async (protocol) => {
      const transport =
        protocol === 'grpc'
          ? createGrpcTransport({ baseUrl: h.apiUrl, interceptors: [createBearerInterceptor(h.tokens.acme)] })
          : createConnectTransport({ baseUrl: h.apiUrl, httpVersion: '1.1', interceptors: [createBearerInterceptor(h.tokens.acme)] });
      const seen: Array<{ kind: StatusUpdateKind; at: number }> = [];
      const t0 = Date.now();
      for await (const res of createClient(WorkflowService, transport).watchWorkflowRun({ id: run.id }, { signal: AbortSignal.timeout(30_000) }))
        seen.push({ kind: res.update!.kind, at: Date.now() - t0 });
      return seen;
    });
    // Quiet for longer than the idle, headers and request timeouts together, then the run goes on and ends.
    const quiet = (IDLE_S + HEADERS_S + REQUEST_S) * 1000 + 500;
    await sleep(quiet);
    const update = (sequence: bigint, kind: StatusUpdateKind, runStatus = RunStatus.UNSPECIFIED) =>
      h.service.recordStatusUpdate({ update: { runId: run.id, sequence, kind, runStatus } });
    await update(1n, StatusUpdateKind.RUN_STARTED);
    await sleep(quiet);
    await update(2n, StatusUpdateKind.RUN_FINISHED, RunStatus.COMPLETED);
    for (const seen of await Promise.all(watchers)) {
      expect(seen.map((s) => s.kind)).toEqual([StatusUpdateKind.RUN_STARTED, StatusUpdateKind.RUN_FINISHED]);
      expect(seen[1]!.at).toBeGreaterThan(2 * quiet);
    }
  });
});
