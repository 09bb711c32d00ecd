import { and, asc, desc, eq, getTableColumns, gte, inArray, isNull, like, lt, sql } from 'drizzle-orm';
import type { StatusUpdateJson } from '@ameide/contracts';
import type { Db } from './client.js';
import { idsWithPrefix } from './ids.js';
import { runFollowups, runs, statusUpdates, type RunState } from './schema.js';

export type RunRow = typeof runs.$inferSelect;
export type NewRunRow = typeof runs.$inferInsert;
export type StatusUpdateRow = typeof statusUpdates.$inferSelect;

/** Where a run stands in the list order: its creation time (ISO 8601 to the microsecond, UTC) and id. */
export interface RunListKey {
  createdAt: string;
  id: string;
}

/** Fields of a run that folding a status update may change. */
export type RunProgress = Pick<RunRow, 'status' | 'phase' | 'state' | 'startedAt' | 'finishedAt'>;

/** Runs and their status updates. */
/**
 * A run's state without its bulky parts, cut in Postgres so they never leave it: the phases' output
 * tails, and the summary's evidence files, egress record and per-call token counts (RUN_VIEW_BASIC).
 */
const basicState = sql<RunRow['state']>`(case when jsonb_typeof(${runs.state}->'phases') = 'array'
  then jsonb_set(${runs.state} #- '{summary,evidence}' #- '{summary,egress}' #- '{summary,agent,calls}', '{phases}',
    coalesce((select jsonb_agg(p - 'outputTail' order by n) from jsonb_array_elements(${runs.state}->'phases') with ordinality as e(p, n)), '[]'::jsonb))
  else ${runs.state} #- '{summary,evidence}' #- '{summary,egress}' #- '{summary,agent,calls}' end)`;

export class RunRepository {
  constructor(private readonly db: Db) {}

  /** Ids of the tenant's runs that begin with `prefix` (a short id), at most `limit`. */
  idsWithPrefix(tenantId: string, prefix: string, limit: number): Promise<string[]> {
    return idsWithPrefix(this.db, 'run', tenantId, prefix, limit);
  }

  async insert(row: NewRunRow): Promise<RunRow> {
    const rows = await this.db.insert(runs).values(row).returning();
    return rows[0]!;
  }

  /**
   * Inserts a run at the end of its lane (`row.branchKey`) under the lane's lock and returns it with
   * the lane's head: the oldest unfinished run of the lane, the only one that may execute.
   */
  async insertInLane(row: NewRunRow & { branchKey: string }): Promise<{ row: RunRow; head: RunRow }> {
    return this.db.transaction(async (tx) => {
      await lockLane(tx, row.tenantId, row.branchKey);
      const [inserted] = await tx.insert(runs).values(row).returning();
      return { row: inserted!, head: (await laneHead(tx, row.tenantId, row.branchKey)) ?? inserted! };
    });
  }

  /** Runs automation made for a work item (any revision) that still wait: QUEUED, oldest first. */
  async waitingAutoRuns(tenantId: string, workItemId: string): Promise<RunRow[]> {
    return this.db
      .select()
      .from(runs)
      .where(and(eq(runs.tenantId, tenantId), eq(runs.status, 'RUN_STATUS_QUEUED'), like(runs.requestId, `auto:${workItemId.replace(/[\\%_]/g, '\\$&')}@%`)))
      .orderBy(asc(runs.queueSeq));
  }

  /** Takes a lane's lock within the caller's transaction (this repository made on it). */
  async lockLane(tenantId: string, branchKey: string): Promise<void> {
    await lockLane(this.db as unknown as Tx, tenantId, branchKey);
  }

  /** A lane's head, read within the caller's transaction after {@link lockLane}. */
  async laneHeadLocked(tenantId: string, branchKey: string): Promise<RunRow | undefined> {
    return laneHead(this.db as unknown as Tx, tenantId, branchKey);
  }

  /** The run a StartWorkflowRun call with this idempotency key made, if any. */
  async getByRequestId(tenantId: string, requestId: string): Promise<RunRow | undefined> {
    const rows = await this.db
      .select()
      .from(runs)
      .where(and(eq(runs.tenantId, tenantId), eq(runs.requestId, requestId)))
      .limit(1);
    return rows[0];
  }

  /** The oldest unfinished run of a lane (read under the lane's lock, so a run being added is seen). */
  async laneHead(tenantId: string, branchKey: string): Promise<RunRow | undefined> {
    return this.db.transaction(async (tx) => {
      await lockLane(tx, tenantId, branchKey);
      return laneHead(tx, tenantId, branchKey);
    });
  }

  /** Finds a run; `tenantId` undefined means any tenant (service credentials only). */
  async get(tenantId: string | undefined, id: string): Promise<RunRow | undefined> {
    const where = tenantId === undefined ? eq(runs.id, id) : and(eq(runs.id, id), eq(runs.tenantId, tenantId));
    const rows = await this.db.select().from(runs).where(where).limit(1);
    return rows[0];
  }

  /**
   * Lists runs, newest first (`created_at` desc, then `id` desc: a stable order), from after `after`
   * (the key of the last run of the previous page) when given. Each row carries its key
   * (`listKey`: `created_at` to the microsecond, and the id). The work item filter uses JSONB
   * containment on the spec (GIN index).
   */
  async list(
    tenantId: string,
    f: { statuses: string[]; workItemId?: string; definitionId?: string; limit: number; after?: RunListKey; view?: 'basic' | 'full' },
  ): Promise<Array<RunRow & { listKey: RunListKey }>> {
    const where = [eq(runs.tenantId, tenantId)];
    if (f.statuses.length) where.push(inArray(runs.status, f.statuses));
    if (f.definitionId) where.push(eq(runs.definitionId, f.definitionId));
    if (f.workItemId) where.push(sql`${runs.spec} @> ${JSON.stringify({ workItemIds: [f.workItemId] })}::jsonb`);
    if (f.after) where.push(sql`(${runs.createdAt}, ${runs.id}) < (${f.after.createdAt}::timestamptz, ${f.after.id}::uuid)`);
    const rows = await this.db
      .select({
        ...getTableColumns(runs),
        ...(f.view === 'full' ? {} : { state: basicState }),
        keyTime: sql<string>`to_char(${runs.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
      })
      .from(runs)
      .where(and(...where))
      .orderBy(desc(runs.createdAt), desc(runs.id))
      .limit(f.limit);
    return rows.map(({ keyTime, ...row }) => ({ ...row, listKey: { createdAt: keyTime, id: row.id } }));
  }

  /** Runs of any tenant still in `status` that were created before `before`, oldest first, a page at a time. */
  async listStale(status: string, before: Date, limit: number, offset = 0): Promise<RunRow[]> {
    return this.db
      .select()
      .from(runs)
      .where(and(eq(runs.status, status), lt(runs.createdAt, before)))
      .orderBy(asc(runs.createdAt), asc(runs.id))
      .limit(limit)
      .offset(offset);
  }

  /** Ends a run that has not finished yet; returns undefined (and changes nothing) when it already has. */
  async finishIfUnfinished(id: string, progress: Partial<RunProgress>): Promise<RunRow | undefined> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(runs)
        .set(progress)
        .where(and(eq(runs.id, id), inArray(runs.status, UNFINISHED_STATUSES)))
        .returning();
      if (row && isTerminalStatus(row.status)) await addFollowup(tx, row, 'finished');
      return row;
    });
  }

  /** Changes a run's progress; a change that ends the run queues its follow-up in the same transaction. */
  async setProgress(id: string, progress: Partial<RunProgress>): Promise<RunRow | undefined> {
    return this.db.transaction(async (tx) => {
      const [before] = await tx.select({ status: runs.status }).from(runs).where(eq(runs.id, id)).for('update');
      const [row] = await tx.update(runs).set(progress).where(eq(runs.id, id)).returning();
      if (row && before && isTerminalStatus(row.status) && !isTerminalStatus(before.status)) await addFollowup(tx, row, 'finished');
      return row;
    });
  }

  /** Follow-ups whose workflow has not been started yet (oldest first), of any tenant. */
  async pendingFollowups(limit: number): Promise<FollowupRow[]> {
    return this.db.select().from(runFollowups).where(isNull(runFollowups.startedAt)).orderBy(asc(runFollowups.createdAt)).limit(limit);
  }

  /** Records that a follow-up's workflow exists (started now, or found started). */
  async followupStarted(runId: string, event: string): Promise<void> {
    await this.db
      .update(runFollowups)
      .set({ startedAt: new Date() })
      .where(and(eq(runFollowups.runId, runId), eq(runFollowups.event, event)));
  }

  /** Stores a run's Definition of Done checklist in its state (the run has finished: nothing else writes it). */
  async setDone(id: string, done: NonNullable<RunState['done']>): Promise<void> {
    await this.db
      .update(runs)
      .set({ state: sql`jsonb_set(${runs.state}, '{done}', ${JSON.stringify(done)}::jsonb)` })
      .where(eq(runs.id, id));
  }

  /**
   * Stores a status update once per run id + sequence and, when it is new, folds it into the run in the
   * same transaction. Returns `duplicate: true` and changes nothing when the sequence was already stored.
   */
  async recordStatusUpdate(
    run: Pick<RunRow, 'id' | 'tenantId'>,
    sequence: number,
    update: StatusUpdateJson,
    fold: (row: RunRow) => RunProgress,
  ): Promise<{ duplicate: boolean; run?: RunRow; followups?: string[] }> {
    return this.db.transaction(async (tx) => {
      const inserted = await tx
        .insert(statusUpdates)
        .values({ runId: run.id, sequence, tenantId: run.tenantId, kind: update.kind ?? '', payload: update })
        .onConflictDoNothing()
        .returning({ sequence: statusUpdates.sequence });
      if (inserted.length === 0) return { duplicate: true };
      const [current] = await tx.select().from(runs).where(eq(runs.id, run.id)).for('update');
      const next = fold(current!);
      const [row] = await tx
        .update(runs)
        .set({ ...next, lastSequence: sql`greatest(${runs.lastSequence}, ${sequence})` })
        .where(eq(runs.id, run.id))
        .returning();
      // What must follow (evidence, notifications, …) is queued with the event itself: it cannot be lost.
      const followups: string[] = [];
      if (isTerminalStatus(next.status) && !isTerminalStatus(current!.status)) followups.push('finished');
      if (update.kind === 'STATUS_UPDATE_KIND_PREVIEW_LIVE') followups.push('preview_live');
      for (const event of followups) await addFollowup(tx, row!, event);
      return { duplicate: false, run: row, followups };
    });
  }

  /** Status updates of a run with sequence ≥ `fromSequence`, in order. */
  async statusUpdatesFrom(runId: string, fromSequence: number, limit = 500): Promise<StatusUpdateRow[]> {
    return this.db
      .select()
      .from(statusUpdates)
      .where(and(eq(statusUpdates.runId, runId), gte(statusUpdates.sequence, fromSequence)))
      .orderBy(asc(statusUpdates.sequence))
      .limit(limit);
  }
}

/** Whether `err` is Postgres refusing a second row for a unique key (e.g. a repeated request id). */
export function isUniqueViolation(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) if (e.code === '23505') return true;
  return false;
}

/** Statuses of a run that has not finished: it holds its lane. */
export const UNFINISHED_STATUSES = ['RUN_STATUS_QUEUED', 'RUN_STATUS_RUNNING'];

export type FollowupRow = typeof runFollowups.$inferSelect;

function isTerminalStatus(status: string): boolean {
  return status !== '' && !UNFINISHED_STATUSES.includes(status);
}

/** Queues a follow-up of a run's event, once (the key is run + event). */
async function addFollowup(tx: Tx, run: Pick<RunRow, 'id' | 'tenantId'>, event: string): Promise<void> {
  await tx.insert(runFollowups).values({ runId: run.id, tenantId: run.tenantId, event }).onConflictDoNothing();
}

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** Serialises changes to one lane until the transaction ends. */
async function lockLane(tx: Tx, tenantId: string, branchKey: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`${tenantId}\n${branchKey}`}, 0))`);
}

async function laneHead(tx: Tx, tenantId: string, branchKey: string): Promise<RunRow | undefined> {
  const rows = await tx
    .select()
    .from(runs)
    .where(and(eq(runs.tenantId, tenantId), eq(runs.branchKey, branchKey), inArray(runs.status, UNFINISHED_STATUSES)))
    .orderBy(asc(runs.queueSeq))
    .limit(1);
  return rows[0];
}

export type { RunState };
