import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import {
  Phase,
  PhaseSchema,
  RecordRunOutputResponseSchema,
  StreamRunOutputResponseSchema,
  type RecordRunOutputRequest,
  type StreamRunOutputRequest,
  type StreamRunOutputResponse,
} from '@ameide/contracts';
import { RunOutputRepository, type Db, type RunOutputRow, type RunRepository, type RunRow } from '@ameide/db';
import { InvalidFieldError, NotFoundError, toConnectError } from '../errors.js';
import { isTerminal } from '../runs/fold.js';
import { RunNotifier } from '../runs/notifier.js';
import { isUuid, requireId, resolveId } from '../validation.js';
import { handle, principalOf, requireWorkerFor } from './context.js';

/** How often a follower reads again when this process stored nothing new (another replica may have). */
const FOLLOW_POLL_MS = 1000;
/** Chunks read per query while following. */
const FOLLOW_PAGE = 200;
/** Phases in the order a run goes through them (the enum's numbers are not that order). */
const PHASE_ORDER = ['PHASE_PREPARE', 'PHASE_INSTALL', 'PHASE_AGENT', 'PHASE_TEST', 'PHASE_PUBLISH', 'PHASE_PREVIEW', 'PHASE_PULL_REQUEST', 'PHASE_REPORT'];
const FINISHED_PHASE_STATES = new Set(['PHASE_STATE_SUCCEEDED', 'PHASE_STATE_FAILED', 'PHASE_STATE_SKIPPED', 'PHASE_STATE_CANCELLED']);

const phaseJsonName = (p: Phase): string => PhaseSchema.values.find((v) => v.number === p)?.name ?? '';
const phaseOf = (name: string): Phase => PhaseSchema.values.find((v) => v.name === name)?.number ?? Phase.UNSPECIFIED;

/** When the run's phase `name` finished (its phase_finished was folded into the run), else undefined. */
function phaseEnd(run: RunRow, name: string): Date | undefined {
  const p = run.state.phases.find((x) => x.phase === name);
  if (!p?.state || !FINISHED_PHASE_STATES.has(p.state)) return undefined;
  return p.endTime ? new Date(p.endTime) : (run.finishedAt ?? new Date());
}

/**
 * The last `lines` lines of one phase's chunks (in offset order): the chunks from the one holding
 * their start, that one cut there (its offset moved by the bytes cut). A final newline ends the last
 * line rather than starting another.
 */
export function tailChunks(chunks: RunOutputRow[], lines: number): RunOutputRow[] {
  if (lines <= 0) return [];
  let seen = 0;
  for (let i = chunks.length - 1; i >= 0; i--) {
    const data = chunks[i]!.data;
    const last = i === chunks.length - 1;
    for (let j = data.length - 1; j >= 0; j--) {
      if (data[j] !== '\n' || (last && j === data.length - 1)) continue;
      if (++seen === lines) {
        const cut = data.slice(0, j + 1);
        const first = { ...chunks[i]!, offset: chunks[i]!.offset + Buffer.byteLength(cut), data: data.slice(j + 1) };
        return [...(first.data ? [first] : []), ...chunks.slice(i + 1)];
      }
    }
  }
  return chunks;
}

/**
 * Run output: the worker records chunks of its command phases' redacted output while they run
 * (RecordRunOutput); readers replay what is kept and follow what comes (StreamRunOutput).
 */
export class OutputHandlers {
  /** Wakes followers of a run when this process stores a chunk of it; they poll as well. */
  private readonly stored = new RunNotifier();

  constructor(
    private readonly output: RunOutputRepository,
    private readonly runs: RunRepository,
  ) {}

  recordRunOutput = (req: RecordRunOutputRequest, ctx: HandlerContext) =>
    handle(async () => {
      if (!principalOf(ctx).service) throw new ConnectError('only the worker service credential may record run output', Code.PermissionDenied);
      const run = isUuid(requireId('run_id', req.runId)) ? await this.runs.get(undefined, req.runId) : undefined;
      if (!run) throw new NotFoundError('run', req.runId);
      requireWorkerFor(ctx, run.tenantId, 'record run output');
      if (req.phase === Phase.UNSPECIFIED) throw new InvalidFieldError('phase', 'must name the phase the output is of');
      const { duplicate } = await this.output.record({
        runId: run.id,
        tenantId: run.tenantId,
        phase: phaseJsonName(req.phase),
        offset: Number(req.offset),
        data: req.data,
      });
      if (!duplicate) this.stored.publish(run.id);
      return create(RecordRunOutputResponseSchema, { duplicate });
    });

  /**
   * Replays the kept output of the run (or one phase), from the last `tail_lines` lines of each
   * phase when asked; with `follow`, then streams new chunks until the run has finished (or the phase
   * asked for). A phase's end is sent as `phase_finished` once all its stored output was sent.
   */
  async *streamRunOutput(req: StreamRunOutputRequest, ctx: HandlerContext): AsyncGenerator<StreamRunOutputResponse> {
    let run: RunRow;
    try {
      const { tenantId } = principalOf(ctx);
      const id = await resolveId(this.runs, 'run', tenantId, 'run_id', req.runId);
      const found = id ? await this.runs.get(tenantId, id) : undefined;
      if (!found) throw new NotFoundError('run', req.runId);
      run = found;
    } catch (err) {
      throw toConnectError(err);
    }
    try {
      yield* this.follow(run, req, ctx.signal);
    } catch (err) {
      throw toConnectError(err);
    }
  }

  private async *follow(first: RunRow, req: StreamRunOutputRequest, signal: AbortSignal): AsyncGenerator<StreamRunOutputResponse> {
    const only = req.phase === Phase.UNSPECIFIED ? undefined : phaseJsonName(req.phase);
    /** Per phase: the offset of the last chunk sent. */
    const after: Record<string, number> = {};
    const finishedSent = new Set<string>();
    let replay = true;
    while (!signal.aborted) {
      // The run is read before the chunks: every chunk stored before it ended is sent before the stream ends.
      const run = replay ? first : ((await this.runs.get(undefined, first.id)) ?? first);
      let rows = await this.output.chunks(run.id, { phase: only, after, phases: PHASE_ORDER, limit: replay ? undefined : FOLLOW_PAGE });
      if (replay && req.tailLines !== undefined)
        rows = PHASE_ORDER.flatMap((p) =>
          tailChunks(
            rows.filter((r) => r.phase === p),
            req.tailLines!,
          ),
        );
      for (const row of rows) {
        // Phases run one after another: output of a later phase means the earlier ones have ended,
        // also when their end has not been reported yet.
        for (const p of PHASE_ORDER) {
          if (p === row.phase) break;
          if (after[p] === undefined || finishedSent.has(p)) continue;
          finishedSent.add(p);
          yield create(StreamRunOutputResponseSchema, { phase: phaseOf(p), phaseFinished: true, time: timestampFromDate(phaseEnd(run, p) ?? row.createdAt) });
        }
        const firstOfPhase = after[row.phase] === undefined;
        after[row.phase] = Math.max(after[row.phase] ?? -1, row.offset);
        yield create(StreamRunOutputResponseSchema, {
          phase: phaseOf(row.phase),
          offset: BigInt(row.offset),
          data: row.data,
          time: timestampFromDate(row.createdAt),
          transcriptUri: firstOfPhase && row.offset > 0 ? transcriptUri(run, row.phase) : '',
        });
      }
      if (!replay && rows.length === FOLLOW_PAGE) continue;
      replay = false;
      for (const p of PHASE_ORDER) {
        if (finishedSent.has(p) || (after[p] === undefined && p !== only)) continue;
        const end = phaseEnd(run, p);
        if (!end) continue;
        finishedSent.add(p);
        yield create(StreamRunOutputResponseSchema, { phase: phaseOf(p), phaseFinished: true, time: timestampFromDate(end) });
      }
      if (!req.follow || isTerminal(run.status) || (only && finishedSent.has(only))) return;
      await this.stored.wait(run.id, FOLLOW_POLL_MS, signal);
    }
  }
}

/** Where the phase's whole transcript is, once the run's report named its transcripts; empty before. */
function transcriptUri(run: RunRow, phase: string): string {
  const dir = run.state.summary?.transcriptsUri;
  return dir ? `${dir}${dir.endsWith('/') ? '' : '/'}${phase.replace(/^PHASE_/, '').toLowerCase()}.log` : '';
}

/** RecordRunOutput and StreamRunOutput, for the WorkflowService router. */
export function outputRoutes(db: Db, runs: RunRepository) {
  const h = new OutputHandlers(new RunOutputRepository(db), runs);
  return { recordRunOutput: h.recordRunOutput, streamRunOutput: (req: StreamRunOutputRequest, ctx: HandlerContext) => h.streamRunOutput(req, ctx) };
}
