import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
import { StreamRedactor, type Redactor } from '../guardrails/redact.js';
import type { CommandCgroup } from '../guardrails/cgroups.js';
import { sandboxArgv, type Postlude, type SandboxSpec } from '../guardrails/sandbox.js';

/** Keeps the last `limit` bytes of a stream of chunks (and of those, when `maxLines` is given, the last `maxLines` lines). */
export class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  total = 0;

  constructor(
    private readonly limit: number,
    private readonly maxLines?: number,
  ) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.limit) this.size -= this.chunks.shift()!.length;
  }

  toString(): string {
    const all = Buffer.concat(this.chunks);
    const cut = all.length > this.limit ? all.subarray(all.length - this.limit) : all;
    // Text for status updates: invalid UTF-8 becomes U+FFFD and NUL becomes ␀ (the transcript keeps the bytes).
    let text = cut.toString('utf8').replace(/\0/g, '\u2400');
    let more = all.length > this.limit || this.total > all.length;
    if (this.maxLines !== undefined) {
      // A final newline ends the last line rather than starting another.
      const lines = text.split('\n');
      const n = text.endsWith('\n') ? lines.length - 1 : lines.length;
      if (n > this.maxLines) {
        text = lines.slice(n - this.maxLines).join('\n');
        more = true;
      }
    }
    return (more ? '…' : '') + text;
  }
}

/**
 * Lets others write notes into a running command's transcript (the egress proxy's log): while the
 * command runs, `write` is set and appends to the transcript in order with the command's output.
 */
export interface TranscriptNotes {
  write?: (text: string) => void;
  /** Called once the command has exited, while `write` still works (a last read of what it reported). */
  beforeEnd?: () => void;
  /** Why the caller aborted the command, when it was not the run's cancellation (the transcript says so). */
  stopReason?: string;
}

export interface CommandSpec {
  command: string;
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  transcriptPath: string;
  tailBytes?: number;
  /** The tail keeps at most this many lines (of its `tailBytes`); default: no line limit. */
  tailLines?: number;
  /**
   * Called with every chunk written to the transcript (already redacted), in order, with its byte
   * offset in the transcript file: the bytes at that offset are exactly these.
   */
  onOutput?: (chunk: Buffer, offset: number) => void;
  /** Set up to write notes into the transcript while the command runs (see TranscriptNotes). */
  notes?: TranscriptNotes;
  /** Aborting kills the whole process group. */
  signal?: AbortSignal;
  /** Called about once a second while the command runs. */
  onProgress?: (bytes: number) => void;
  killGraceMs?: number;
  /** Run inside this sandbox (bubblewrap as an unprivileged user); plain `/bin/sh -c` when absent. */
  sandbox?: SandboxSpec;
  /** A fixed script run in the same sandbox just before the command (see sandboxArgv); needs `sandbox`. */
  prelude?: string;
  /** A fixed script run in the same sandbox just after the command (see sandboxArgv); needs `sandbox`. */
  postlude?: Postlude;
  /** The command's own cgroup (process and CPU limits); everything in it is killed when the command ends. */
  cgroup?: CommandCgroup;
  /** At most this many output bytes go to the transcript; the rest is counted and cut with a marker. */
  maxOutputBytes?: number;
  /** Secrets to hide from the output before it reaches the tail or the transcript. */
  redactor?: Redactor;
  /** Called with the pid of the command's first process (the leader of its process group) once it is started. */
  onStart?: (pid: number) => void;
}

export interface CommandResult {
  exitCode: number;
  signal?: string;
  durationMs: number;
  outputTail: string;
  outputBytes: number;
  /** True when output beyond `maxOutputBytes` was cut from the transcript. */
  truncated: boolean;
  timedOut: boolean;
  aborted: boolean;
}

/** Exit code reported when the phase's wall-clock budget ran out (as `timeout(1)` does). */
export const TIMEOUT_EXIT_CODE = 124;

/**
 * Runs a shell command in its own process group, writing stdout and stderr to a transcript file and
 * keeping a tail. On timeout or abort the whole group gets SIGTERM, then SIGKILL after a grace period.
 */
export async function runCommand(spec: CommandSpec): Promise<CommandResult> {
  const started = Date.now();
  // A retried attempt appends to the transcript of earlier ones: offsets continue after them.
  let offset = spec.onOutput
    ? await stat(spec.transcriptPath).then(
        (s) => s.size,
        () => 0,
      )
    : 0;
  const file = createWriteStream(spec.transcriptPath, { flags: 'a' });
  /** Everything goes to the transcript through here, so that `onOutput` sees exactly its bytes. */
  const transcript = {
    write(data: Buffer | string): void {
      const b = typeof data === 'string' ? Buffer.from(data) : data;
      if (b.length === 0) return;
      file.write(b);
      try {
        spec.onOutput?.(b, offset);
      } catch {
        /* whoever follows the output never stops the command */
      }
      offset += b.length;
    },
    end(data: string): void {
      transcript.write(data);
      file.end();
    },
  };
  transcript.write(`$ ${spec.redactor ? spec.redactor.redact(spec.command) : spec.command}\n`);
  if (spec.notes) spec.notes.write = (text) => transcript.write(text);
  const tail = new OutputTail(spec.tailBytes ?? 4000, spec.tailLines);
  // A sandboxed command starts as root only long enough to join its cgroups, then drops to the
  // sandbox user (see sandboxArgv); its working directory is set inside the sandbox.
  const argv = spec.sandbox
    ? sandboxArgv({ ...spec.sandbox, cgroupProcs: spec.cgroup?.procs }, spec.command, spec.prelude, spec.postlude)
    : { file: '/bin/sh', args: ['-c', spec.command] };
  const child = spawn(argv.file, argv.args, {
    cwd: spec.sandbox?.kind === 'bubblewrap' ? '/' : spec.cwd,
    env: spec.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) spec.onStart?.(child.pid);
  const budget = spec.maxOutputBytes ?? Number.POSITIVE_INFINITY;
  let written = 0;
  let truncated = false;
  const stream = spec.redactor && !spec.redactor.empty ? new StreamRedactor(spec.redactor) : undefined;
  // Byte mode: the transcript keeps the command's bytes exactly (NUL, binary, invalid UTF-8), only secrets replaced.
  const onData = (raw: Buffer) => emit(stream ? stream.pushBytes(raw) : raw);
  const emit = (chunk: Buffer) => {
    if (chunk.length === 0) return;
    tail.push(chunk);
    if (written >= budget) return;
    const room = budget - written;
    if (chunk.length > room) {
      transcript.write(chunk.subarray(0, room));
      transcript.write(`\n[ameide] output truncated: the transcript keeps the first ${budget} bytes\n`);
      truncated = true;
      written = budget;
    } else {
      transcript.write(chunk);
      written += chunk.length;
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  let timedOut = false;
  let aborted = false;
  let killTimer: NodeJS.Timeout | undefined;
  const killGroup = () => {
    if (killTimer || child.pid === undefined) return;
    signalGroup(child.pid, 'SIGTERM');
    killTimer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), spec.killGraceMs ?? 3000);
  };
  const timeout = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, spec.timeoutMs);
  const onAbort = () => {
    aborted = true;
    killGroup();
  };
  if (spec.signal?.aborted) onAbort();
  spec.signal?.addEventListener('abort', onAbort, { once: true });
  const progress = setInterval(() => spec.onProgress?.(tail.total), 1000);

  const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.once('error', (err) => {
      onData(Buffer.from(`failed to start: ${err.message}\n`));
      resolve([127, null]);
    });
    // When the shell exits, whatever it left behind in its group (and its cgroup) goes too, so the pipes close.
    child.once('exit', () => {
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      void spec.cgroup?.kill();
    });
    child.once('close', (c, s) => resolve([c, s]));
  });
  clearTimeout(timeout);
  clearTimeout(killTimer);
  clearInterval(progress);
  spec.signal?.removeEventListener('abort', onAbort);
  const exitCode = timedOut ? TIMEOUT_EXIT_CODE : (code ?? 128 + signalNumber(sig));
  if (stream) emit(stream.flushBytes());
  const outputBytes = tail.total;
  const note = timedOut
    ? `\n[ameide] killed after the ${Math.round(spec.timeoutMs / 1000)}s phase budget\n`
    : aborted
      ? `\n[ameide] killed: ${spec.notes?.stopReason ?? 'run cancelled'}\n`
      : '';
  if (truncated) tail.push(Buffer.from(`\n[ameide] output truncated: ${outputBytes} bytes, the transcript keeps the first ${budget}\n`));
  if (note) tail.push(Buffer.from(note));
  try {
    spec.notes?.beforeEnd?.();
  } catch {
    // What the caller reads last must not lose the transcript.
  }
  if (spec.notes) spec.notes.write = undefined;
  transcript.end(`${note}[exit ${exitCode}${sig ? ` signal ${sig}` : ''}]\n`);
  await once(file, 'close');
  return {
    exitCode,
    signal: sig ?? undefined,
    durationMs: Date.now() - started,
    outputTail: tail.toString(),
    outputBytes,
    truncated,
    timedOut,
    aborted,
  };
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    /* already gone */
  }
}

function signalNumber(sig: NodeJS.Signals | null): number {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return sig ? (table[sig] ?? 0) : 0;
}
