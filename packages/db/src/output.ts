import { and, asc, eq, gt, notInArray, or, sql, type SQL } from 'drizzle-orm';
import type { Db } from './client.js';
import { runOutput } from './schema.js';

export type RunOutputRow = typeof runOutput.$inferSelect;

/** What the service keeps of each phase's output: its newest 1 MiB (the whole transcript is in the artifact store). */
export const RUN_OUTPUT_KEEP_BYTES = 1024 * 1024;

/** One chunk of a phase's output as the worker sends it. */
export interface NewRunOutput {
  runId: string;
  tenantId: string;
  /** The Phase JSON name (`PHASE_AGENT`). */
  phase: string;
  /** Byte offset of the chunk in the phase's transcript. */
  offset: number;
  data: string;
}

/** Which chunks to read: of one phase or all, after a per-phase offset, in the order of `phases`. */
export interface RunOutputQuery {
  phase?: string;
  /** Per phase, the offset of the last chunk already read: only later chunks are read. */
  after?: Record<string, number>;
  /** Phases in the order they run; chunks are read phase by phase in this order, then by offset. */
  phases?: readonly string[];
  limit?: number;
}

/**
 * The newest output of runs' command phases: chunks by run, phase and transcript offset (stored once
 * per offset), at most about `RUN_OUTPUT_KEEP_BYTES` per phase.
 */
export class RunOutputRepository {
  constructor(
    private readonly db: Db,
    private readonly keepBytes = RUN_OUTPUT_KEEP_BYTES,
  ) {}

  /**
   * Stores a chunk unless one is stored at its offset already (`duplicate`: nothing changed), then
   * drops the phase's chunks that lie wholly before its newest `keepBytes`.
   */
  async record(c: NewRunOutput): Promise<{ duplicate: boolean }> {
    const inserted = await this.db.insert(runOutput).values(c).onConflictDoNothing().returning({ offset: runOutput.offset });
    if (!inserted.length) return { duplicate: true };
    const ofPhase = and(eq(runOutput.runId, c.runId), eq(runOutput.phase, c.phase));
    await this.db
      .delete(runOutput)
      .where(
        and(
          ofPhase,
          sql`${runOutput.offset} + octet_length(${runOutput.data}) <= (select max(o."offset" + octet_length(o.data)) from run_output o where o.run_id = ${c.runId} and o.phase = ${c.phase}) - ${this.keepBytes}`,
        ),
      );
    return { duplicate: false };
  }

  /** The run's chunks (see RunOutputQuery), phase by phase, each phase's by offset. */
  async chunks(runId: string, q: RunOutputQuery = {}): Promise<RunOutputRow[]> {
    const conds: SQL[] = [eq(runOutput.runId, runId)];
    if (q.phase) conds.push(eq(runOutput.phase, q.phase));
    const after = Object.entries(q.after ?? {});
    if (after.length) {
      conds.push(
        or(
          notInArray(
            runOutput.phase,
            after.map(([p]) => p),
          ),
          ...after.map(([p, offset]) => and(eq(runOutput.phase, p), gt(runOutput.offset, offset))),
        )!,
      );
    }
    const phases = q.phases ?? [];
    const phaseOrder = phases.length
      ? sql`case ${runOutput.phase} ${sql.join(
          phases.map((p, i) => sql`when ${p} then ${sql.raw(String(i))}`),
          sql` `,
        )} else ${sql.raw(String(phases.length))} end`
      : sql`0`;
    const query = this.db
      .select()
      .from(runOutput)
      .where(and(...conds))
      .orderBy(phaseOrder, asc(runOutput.phase), asc(runOutput.offset));
    return q.limit ? query.limit(q.limit) : query;
  }
}
