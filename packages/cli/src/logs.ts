import { Phase, PhaseSchema, type StreamRunOutputResponse } from '@ameide/contracts';
import { Code, ConnectError, type WorkflowServiceClient } from '@ameide/sdk';
import { UsageError } from './args.js';
import type { Output } from './commands.js';

/** How long `runs logs -f` keeps reconnecting while the service is unreachable. */
const RECONNECT_FOR_MS = 10 * 60_000;

/** `agent`, `AGENT`, `pull-request` or `PHASE_PULL_REQUEST` as a Phase. */
export function parsePhase(name: string): Phase {
  const wanted = `PHASE_${name
    .trim()
    .toUpperCase()
    .replace(/^PHASE_/, '')
    .replace(/-/g, '_')}`;
  const v = PhaseSchema.values.find((x) => x.name === wanted && x.number !== Phase.UNSPECIFIED);
  if (!v) throw new UsageError(`--phase ${name}: use install, agent or test (the phases that run commands)`);
  return v.number;
}

const phaseLabel = (p: Phase) => (PhaseSchema.values.find((v) => v.number === p)?.name ?? String(p)).replace(/^PHASE_/, '').toLowerCase();

/** Whether a call failed because the service was unreachable or went away mid-stream. */
function transient(err: unknown): boolean {
  const e = ConnectError.from(err);
  if (e.code === Code.Internal && /^write (EPIPE|ECONNRESET)$/.test(e.rawMessage)) return true;
  return e.code === Code.Unavailable || e.code === Code.Unknown || e.code === Code.Aborted;
}

/** Prints chunks of output as whole lines, each phase under a `==> phase <==` header. */
class LogPrinter {
  private phase: Phase | undefined;
  private partial = '';

  constructor(private readonly o: Output) {}

  chunk(res: StreamRunOutputResponse, first: boolean): void {
    if (res.phase !== this.phase) {
      this.flush();
      if (this.phase !== undefined) this.o.out('');
      this.o.out(`==> ${phaseLabel(res.phase)} <==`);
      this.phase = res.phase;
    }
    if (first && res.offset > 0n) {
      const where = res.transcriptUri
        ? `; the whole transcript: ${res.transcriptUri}`
        : "; the whole transcript is stored with the run's transcripts when the phase ends";
      this.o.out(`[… the first ${res.offset} bytes of this phase's output are not kept by the service${where} …]`);
    }
    const lines = (this.partial + res.data).split('\n');
    this.partial = lines.pop()!;
    for (const line of lines) this.o.out(line);
  }

  /** The phase ended: its last line, even without a newline. */
  finish(phase: Phase): void {
    if (phase === this.phase) this.flush();
  }

  flush(): void {
    if (this.partial) this.o.out(this.partial);
    this.partial = '';
  }
}

/**
 * `ameide runs logs <run> [--phase p] [-f|--follow]`: prints the output the service keeps of the run's
 * command phases (the newest part of each; the whole transcripts are in the artifact store), each
 * phase under a `==> agent <==` header; with `follow`, then what they print as they run, until the run
 * (or the phase asked for) has finished. While following it reconnects when the service restarts or is
 * briefly unreachable (for up to ten minutes) and prints nothing twice. Returns 0.
 */
export async function runsLogs(
  api: WorkflowServiceClient,
  runId: string,
  opts: { phase?: string; follow: boolean },
  o: Output,
  signal?: AbortSignal,
): Promise<number> {
  const phase = opts.phase ? parsePhase(opts.phase) : Phase.UNSPECIFIED;
  const printer = new LogPrinter(o);
  /** Per phase: the offset of the last chunk printed (a reconnect replays what the service keeps). */
  const printed = new Map<Phase, bigint>();
  let failingSince: number | undefined;
  for (;;) {
    try {
      for await (const res of api.streamRunOutput({ runId, phase, follow: opts.follow }, { signal })) {
        failingSince = undefined;
        if (res.phaseFinished) {
          printer.finish(res.phase);
          continue;
        }
        const last = printed.get(res.phase);
        if (last !== undefined && res.offset <= last) continue;
        printer.chunk(res, last === undefined);
        printed.set(res.phase, res.offset);
      }
      printer.flush();
      return 0;
    } catch (err) {
      if (!opts.follow || !transient(err) || signal?.aborted) throw err;
      const since = (failingSince ??= Date.now());
      if (Date.now() - since > RECONNECT_FOR_MS) throw err;
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.floor((Date.now() - since) / 2000))));
    }
  }
}

/**
 * The last `lines` lines of what a phase printed so far (of what the service keeps), for `runs watch`
 * to show what the running command is doing. Rejects with the service's error.
 */
export async function latestOutputLines(api: WorkflowServiceClient, runId: string, phase: string, lines: number): Promise<string[]> {
  let text = '';
  for await (const res of api.streamRunOutput({ runId, phase: parsePhase(phase), follow: false, tailLines: lines })) {
    if (!res.phaseFinished) text += res.data;
  }
  if (!text) return [];
  const all = text.split('\n');
  if (text.endsWith('\n')) all.pop();
  return all.slice(-lines);
}
