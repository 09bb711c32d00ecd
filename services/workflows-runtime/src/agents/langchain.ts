/**
 * The platform's own agent runtime (packages/agent: LangChain JS v1) as an agent of the agent phase.
 *
 * How it is started: `node <repo>/packages/agent/dist/agent.mjs --prompt-file … --model … --endpoint …`
 * in the sandbox, with the worktree as its working directory. The bundle is one ES module built by
 * `make deps` (packages/agent/build.mjs); its directory is mounted read-only. The runtime is the
 * sandboxed process itself: its model client goes through the sandbox's HTTP(S) proxy to the model
 * host, its tools stay inside the worktree, and it stops itself after `maxTurns` model calls (exit 3).
 *
 * What it reports:
 * - stdout: one AgentEvent per line as JSON, read here with {@link parseLangchainLine} (untrusted:
 *   every line is validated, anything else is ignored).
 * - spans: the sandbox reaches no collector, so the runtime writes its spans (an `agent` span under
 *   the phase's traceparent, one span per model call and per tool call) as an OTLP/JSON
 *   ExportTraceServiceRequest to {@link agentSpansFile} when it ends; after the phase the worker
 *   sends that file to its collector with {@link exportAgentSpans}.
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { packageVersion } from './native.js';
import { AgentUnavailableError, defaultApi, type AgentAdapter, type AgentConfig, type AgentEvent, type AgentLaunch, type AgentLaunchContext } from './types.js';

/** The bundled runtime, relative to this file (services/workflows-runtime/src/agents/). */
const BUNDLE = fileURLToPath(new URL('../../../../packages/agent/dist/agent.mjs', import.meta.url));

/** The spans file's name in the step's TMPDIR. */
export const AGENT_SPANS_FILE_NAME = 'agent-spans.json';
/** The instructions file's name in the step's TMPDIR (written by the worker before the start). */
export const AGENT_INSTRUCTIONS_FILE_NAME = 'agent-instructions.md';
/** The largest spans file {@link exportAgentSpans} reads. */
export const MAX_SPANS_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Where the runtime writes its spans, as a sandbox path (under the step's TMPDIR). The worker reads
 * the same file at the host path of that TMPDIR, joined with {@link AGENT_SPANS_FILE_NAME}.
 */
export function agentSpansFile(ctx: Pick<AgentLaunchContext, 'tmp'>): string {
  return join(ctx.tmp, AGENT_SPANS_FILE_NAME);
}

/** The bundle's real path, or why the runtime cannot run here. */
export function langchainBundle(bundle = BUNDLE): string {
  try {
    return realpathSync(bundle);
  } catch {
    throw new AgentUnavailableError('the LangChain agent runtime is not built (packages/agent/dist/agent.mjs is missing): run `make deps`');
  }
}

/** The Node binary that runs the bundle, and the host directory to mount for it when it is not under /usr. */
function nodeBinary(): { path: string; mount?: string } {
  const path = realpathSync(process.execPath);
  return path.startsWith('/usr/') ? { path } : { path, mount: dirname(path) };
}

function launch(config: AgentConfig, ctx: AgentLaunchContext): AgentLaunch {
  const bundle = langchainBundle();
  const node = nodeBinary();
  const api = config.api ?? defaultApi('langchain');
  const files: AgentLaunch['files'] = [];
  const argv = [
    node.path,
    bundle,
    '--prompt-file',
    ctx.promptFile,
    '--model',
    config.model,
    '--endpoint',
    config.endpoint,
    '--api',
    api,
    '--max-turns',
    String(config.maxTurns),
    '--spans-file',
    agentSpansFile(ctx),
  ];
  if (config.apiKeyEnv) argv.push('--api-key-env', config.apiKeyEnv);
  if (config.instructions) {
    const path = join(ctx.tmp, AGENT_INSTRUCTIONS_FILE_NAME);
    files.push({ path, content: config.instructions });
    argv.push('--instructions-file', path);
  }
  if (ctx.traceparent) argv.push('--traceparent', ctx.traceparent);
  return {
    argv,
    // The worker's own Node options (a loader, an inspector) are not the runtime's.
    env: { NODE_OPTIONS: '' },
    files,
    readOnly: [dirname(bundle), ...(node.mount ? [node.mount] : [])],
  };
}

const text = z.string();
const id = z.string().max(1024).optional();
const tokens = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** The runtime's event lines (packages/agent/src/events.ts), as the worker accepts them. */
export const langchainEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('turn') }),
  z.object({ type: z.literal('message'), role: z.enum(['assistant', 'user']), text }),
  z.object({ type: z.literal('tool_call'), name: z.string().min(1).max(256), input: text, id }),
  z.object({ type: z.literal('tool_result'), output: text, id, isError: z.boolean().optional() }),
  z.object({ type: z.literal('usage'), model: z.string().max(256).optional(), inputTokens: tokens, outputTokens: tokens }),
  z.object({ type: z.literal('final'), text }),
  z.object({ type: z.literal('error'), message: text }),
]);

/** Reads one stdout line of the runtime: its event, or nothing for anything that is not one. */
export function parseLangchainLine(line: string): AgentEvent[] {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return [];
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    return [];
  }
  const parsed = langchainEventSchema.safeParse(json);
  if (!parsed.success) return [];
  // Without the keys zod leaves undefined, as AgentEvent's optional fields are absent, not undefined.
  return [Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== undefined)) as AgentEvent];
}

export const langchainAdapter: AgentAdapter = {
  kind: 'langchain',
  launch,
  parseLine: parseLangchainLine,
  // The runtime's package, and the LangChain it is built on.
  version: () => {
    const dir = join(dirname(langchainBundle()), '..');
    return `ameide-agent ${packageVersion(dir)} (langchain ${packageVersion(join(dir, 'node_modules', 'langchain'))})`;
  },
};

/** The spans file is missing, too large, or not an OTLP/JSON trace export. */
export class AgentSpansError extends Error {
  override name = 'AgentSpansError';
}

const otlpSpans = z
  .object({
    resourceSpans: z.array(
      z
        .object({
          scopeSpans: z
            .array(z.object({ spans: z.array(z.object({ traceId: z.string(), spanId: z.string(), name: z.string() }).loose()).optional() }).loose())
            .optional(),
        })
        .loose(),
    ),
  })
  .loose();

/** Reads `file` without following a symlink (the sandbox wrote it), at most {@link MAX_SPANS_FILE_BYTES}. */
function readUntrusted(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AgentSpansError(
      code === 'ENOENT' ? `the agent wrote no spans file (${file})` : `cannot open the agent's spans file ${file}: ${code ?? (err as Error).message}`,
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new AgentSpansError(`the agent's spans file ${file} is not a regular file`);
    if (st.size > MAX_SPANS_FILE_BYTES) throw new AgentSpansError(`the agent's spans file ${file} is ${st.size} bytes, more than ${MAX_SPANS_FILE_BYTES}`);
    const buf = Buffer.alloc(MAX_SPANS_FILE_BYTES + 1);
    let size = 0;
    for (let n; size < buf.length && (n = readSync(fd, buf, size, buf.length - size, null)) > 0;) size += n;
    if (size > MAX_SPANS_FILE_BYTES) throw new AgentSpansError(`the agent's spans file ${file} is more than ${MAX_SPANS_FILE_BYTES} bytes`);
    return buf.subarray(0, size).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Sends the spans the runtime wrote to `file` (untrusted: at most 4 MiB, an OTLP/JSON
 * ExportTraceServiceRequest with a `resourceSpans` array) to the OTLP/HTTP JSON traces endpoint
 * `otlpTracesUrl` (e.g. `http://collector:4318/v1/traces`). Returns how many spans it sent.
 */
export async function exportAgentSpans(file: string, otlpTracesUrl: string): Promise<number> {
  const raw = readUntrusted(file);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new AgentSpansError(`the agent's spans file ${file} is not JSON: ${(err as Error).message}`);
  }
  const parsed = otlpSpans.safeParse(json);
  if (!parsed.success)
    throw new AgentSpansError(`the agent's spans file ${file} is not an OTLP/JSON trace export (an object with a resourceSpans array of scopeSpans of spans)`);
  const count = parsed.data.resourceSpans.reduce((n, rs) => n + (rs.scopeSpans ?? []).reduce((m, ss) => m + (ss.spans?.length ?? 0), 0), 0);
  if (count === 0) return 0;
  const res = await fetch(otlpTracesUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(json),
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) {
    const detail = (await res.text().catch(() => '')).slice(0, 300);
    throw new AgentSpansError(`the collector at ${otlpTracesUrl} refused the agent's spans: HTTP ${res.status}${detail ? `: ${detail}` : ''}`);
  }
  await res.body?.cancel().catch(() => undefined);
  return count;
}
