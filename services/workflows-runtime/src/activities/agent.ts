import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { chown, mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { AgentRunResult, AgentSettings, CodingRunInput } from '@ameide/temporal';
import { ADAPTERS, type AgentAdapter, type AgentEvent, type AgentLaunch, type AgentLaunchContext } from '../agents/index.js';
import type { Redactor } from '../guardrails/redact.js';
import { SANDBOX_MOUNTS, sandboxUserFor } from '../guardrails/sandbox.js';

/**
 * The agent phase with a coding agent (spec.agent): the adapter says how to start it; this module
 * turns that into the step's command, files and mounts, and reads what the agent reports.
 *
 * The agent's stdout (its JSON lines) goes to a file in the step's TMPDIR, never to the worker's
 * tools: the worker opens that file itself before the start (no symlink followed), reads it as
 * data while the command runs, and parses each complete line with the adapter. Each event becomes a
 * readable `[agent] …` line in the phase's transcript (so `ameide runs logs` shows the turns live);
 * the events themselves, redacted, are the agent's transcript artifact. More model calls than
 * `maxTurns` stop the command.
 */

/** Where the agent's stdout goes, in the step's TMPDIR. */
const EVENTS_FILE = 'ameide-agent-events.jsonl';
/** Where its stdin comes from (when the adapter gives one), in the step's TMPDIR. */
const STDIN_FILE = 'ameide-agent-stdin.txt';
/** The longest line read as an event; longer ones are skipped. */
const MAX_LINE_BYTES = 1024 * 1024;
/** Model calls kept per call in the summary. */
const MAX_CALLS = 200;
/** The final message kept in the summary. */
const MAX_FINAL_CHARS = 4096;
/** Characters of a message or tool input shown per transcript line. */
const NOTE_CHARS = 300;

/** What runs for an agent kind, with its version (for the provenance); `unknown` when it cannot be told here. */
export function agentVersion(kind: AgentSettings['kind']): string {
  try {
    return ADAPTERS[kind].version();
  } catch {
    return 'unknown';
  }
}

/** Single-quotes a word for /bin/sh. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** How the agent phase starts a coding agent. */
export interface PreparedAgent {
  adapter: AgentAdapter;
  launch: AgentLaunch;
  /** The step's command: the adapter's argv, stdin from its file, stdout to the events file. */
  command: string;
  /** Writes the launch's files and the events file into the step's fresh HOME and TMPDIR. */
  beforeStart: (dirs: { home: string; tmp: string }) => Promise<void>;
  /** The host path of the events file, once the step's directories exist. */
  eventsFile: (dirs: { tmp: string }) => string;
}

/** Prepares the agent of a run for one attempt of its agent phase. Throws AgentUnavailableError when it cannot run here. */
export function prepareAgent(
  run: CodingRunInput,
  agent: AgentSettings,
  opts: { promptFile: string; hostDirs: { home: string; tmp: string; worktree: string }; traceparent?: string },
): PreparedAgent {
  const adapter = ADAPTERS[agent.kind];
  const sandboxed = run.repo.guardrails.sandbox === 'bubblewrap';
  const ctx: AgentLaunchContext = sandboxed
    ? { promptFile: opts.promptFile, worktree: SANDBOX_MOUNTS.worktree, home: SANDBOX_MOUNTS.home, tmp: SANDBOX_MOUNTS.tmp }
    : { promptFile: opts.promptFile, worktree: opts.hostDirs.worktree, home: opts.hostDirs.home, tmp: opts.hostDirs.tmp };
  if (opts.traceparent) ctx.traceparent = opts.traceparent;
  const launch = adapter.launch(
    {
      kind: agent.kind,
      model: agent.model,
      endpoint: agent.endpoint,
      api: agent.api,
      apiKeyEnv: agent.apiKeyEnv,
      maxTurns: agent.maxTurns,
      instructions: agent.instructions,
    },
    ctx,
  );
  // Files go only under the step's own HOME and TMPDIR (fresh for every attempt).
  const hostPathOf = (path: string, dirs: { home: string; tmp: string }): string => {
    for (const [at, host] of [
      [ctx.home, dirs.home],
      [ctx.tmp, dirs.tmp],
    ] as const) {
      const rel = relative(at, path);
      if (rel && !rel.startsWith('..') && !rel.startsWith('/')) return join(host, rel);
    }
    throw new Error(`the ${agent.kind} adapter asked for a file outside the step's HOME and TMPDIR: ${path}`);
  };
  const stdin = launch.stdin === undefined ? '/dev/null' : join(ctx.tmp, STDIN_FILE);
  const command = `exec ${launch.argv.map(shellQuote).join(' ')} < ${shellQuote(stdin)} > ${shellQuote(join(ctx.tmp, EVENTS_FILE))}`;
  const owner = sandboxed ? sandboxUserFor(run.tenantId) : undefined;
  return {
    adapter,
    launch,
    command,
    eventsFile: (dirs) => join(dirs.tmp, EVENTS_FILE),
    beforeStart: async (dirs) => {
      const files = [...launch.files, { path: join(ctx.tmp, EVENTS_FILE), content: '' }];
      if (launch.stdin !== undefined) files.push({ path: join(ctx.tmp, STDIN_FILE), content: launch.stdin });
      for (const f of files) {
        const host = hostPathOf(f.path, dirs);
        await mkdirFor(host, dirs, owner);
        await writeFile(host, f.content, { mode: 0o600, flag: 'wx' });
        if (owner) await chown(host, owner.uid, owner.gid);
      }
    },
  };
}

/** Creates the directories between the step's HOME or TMPDIR and `file`, owned by the sandbox user. */
async function mkdirFor(file: string, dirs: { home: string; tmp: string }, owner: { uid: number; gid: number } | undefined): Promise<void> {
  const root = file.startsWith(dirs.home + '/') ? dirs.home : dirs.tmp;
  let dir = root;
  for (const part of relative(root, file).split('/').slice(0, -1)) {
    dir = join(dir, part);
    await mkdir(dir, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    if (owner) await chown(dir, owner.uid, owner.gid);
  }
}

/**
 * Reads the agent's events file while it runs: whole lines only, parsed by the adapter; keeps the
 * counts for the run summary, the redacted events for the transcript artifact, and stops the agent
 * (through `stop`) once it has made more model calls than it may.
 */
export class AgentMonitor {
  private fd: number | undefined;
  private offset = 0;
  private pending = Buffer.alloc(0);
  private skipping = false;
  readonly events: AgentEvent[] = [];
  private readonly result: AgentRunResult;
  private eventBytes = 0;
  /** One read buffer for the monitor's life (it polls four times a second). */
  private readonly buf = Buffer.alloc(256 * 1024);

  constructor(
    private readonly agent: AgentSettings,
    private readonly redactor: Redactor,
    private readonly opts: { note: (line: string) => void; stop: (reason: string) => void; maxEventBytes: number },
  ) {
    this.result = {
      kind: agent.kind,
      model: agent.model,
      endpoint: agent.endpoint,
      turns: 0,
      toolCalls: 0,
      inputTokens: 0,
      outputTokens: 0,
      calls: [],
      transcriptUri: '',
    };
  }

  /** Opens the events file the worker made (never following a link the sandbox may have put in its place). */
  open(path: string): void {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new Error('the agent events file is not a regular file');
    }
    this.fd = fd;
  }

  /** Reads what the agent wrote since the last call. */
  poll(): void {
    if (this.fd === undefined) return;
    for (;;) {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, this.offset);
      if (n <= 0) break;
      this.offset += n;
      this.take(this.buf.subarray(0, n));
    }
  }

  /** Reads the rest and closes the file; returns the summary of what the agent did. */
  finish(): AgentRunResult {
    this.poll();
    if (this.pending.length && !this.skipping) this.line(this.pending.toString('utf8'));
    this.pending = Buffer.alloc(0);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    return this.result;
  }

  /** The events, redacted, one JSON object per line. */
  transcript(): string {
    return this.events.map((e) => JSON.stringify(e)).join('\n') + (this.events.length ? '\n' : '');
  }

  private take(chunk: Buffer): void {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const nl = data.indexOf(0x0a);
      if (nl < 0) break;
      if (!this.skipping) this.line(data.subarray(0, nl).toString('utf8'));
      this.skipping = false;
      data = data.subarray(nl + 1);
    }
    if (data.length > MAX_LINE_BYTES) {
      this.skipping = true;
      data = Buffer.alloc(0);
    }
    this.pending = Buffer.from(data);
  }

  private line(text: string): void {
    let events: AgentEvent[];
    try {
      events = ADAPTERS[this.agent.kind].parseLine(text);
    } catch {
      return;
    }
    for (const raw of events) this.event(this.redactEvent(raw));
  }

  private redactEvent(e: AgentEvent): AgentEvent {
    const r = (s: string) => this.redactor.redact(s);
    switch (e.type) {
      case 'message':
        return { ...e, text: r(e.text) };
      case 'tool_call':
        return { ...e, name: r(e.name), input: r(e.input) };
      case 'tool_result':
        return { ...e, output: r(e.output) };
      case 'final':
        return { ...e, text: r(e.text) };
      case 'error':
        return { ...e, message: r(e.message) };
      case 'usage':
        return e.model === undefined ? e : { ...e, model: r(e.model) };
      default:
        return e;
    }
  }

  private event(e: AgentEvent): void {
    const json = JSON.stringify(e);
    if (this.eventBytes + json.length <= this.opts.maxEventBytes) {
      this.events.push(e);
      this.eventBytes += json.length + 1;
    }
    const s = this.result;
    const short = (t: string) => (t.length > NOTE_CHARS ? `${t.slice(0, NOTE_CHARS)}…` : t).replace(/\s+/g, ' ').trim();
    switch (e.type) {
      case 'turn':
        s.turns++;
        this.opts.note(`[agent] model call ${s.turns}`);
        if (s.turns > this.agent.maxTurns) {
          s.stopped ??= `the agent was stopped after ${this.agent.maxTurns} model calls (maxTurns ${this.agent.maxTurns})`;
          this.opts.stop(s.stopped);
        }
        break;
      case 'tool_call':
        s.toolCalls++;
        this.opts.note(`[agent] tool ${e.name}: ${short(e.input)}`);
        break;
      case 'tool_result':
        this.opts.note(`[agent] ${e.isError ? 'tool error' : 'tool result'}: ${short(e.output)}`);
        break;
      case 'message':
        if (e.role === 'assistant') this.opts.note(`[agent] says: ${short(e.text)}`);
        break;
      case 'usage':
        s.inputTokens += e.inputTokens;
        s.outputTokens += e.outputTokens;
        if (s.calls.length < MAX_CALLS) s.calls.push({ model: e.model ?? this.agent.model, inputTokens: e.inputTokens, outputTokens: e.outputTokens });
        this.opts.note(`[agent] tokens: ${e.inputTokens} in, ${e.outputTokens} out`);
        break;
      case 'final':
        s.finalMessage = e.text.slice(0, MAX_FINAL_CHARS);
        this.opts.note(`[agent] done: ${short(e.text)}`);
        break;
      case 'error':
        this.opts.note(`[agent] error: ${short(e.message)}`);
        break;
    }
  }
}
