import { and, asc, desc, eq, getTableColumns, gte, inArray, isNull, like, lt, sql, type SQL } from 'drizzle-orm';
import type { StatusUpdateJson } from '@ameide/contracts';
import type { Db } from './client.js';
import { idsWithPrefix } from './ids.js';
import { afterKey, keyTime } from './keyset.js';
import { runFollowups, runs, runWorkItems, statusUpdates, type RunState } from './schema.js';

/** A run as the service reads it; `basicState` (what lists read instead of `state`) is left out. */
export type RunRow = Omit<typeof runs.$inferSelect, 'basicState'>;
export type NewRunRow = typeof runs.$inferInsert;
export type StatusUpdateRow = typeof statusUpdates.$inferSelect;

/** Where a run stands in the list order: its creation time (ISO 8601 to the microsecond, UTC) and id. */
export interface RunListKey {
  createdAt: string;
  id: string;
}

/** A run list key as the values of the list order's columns. */
const afterRun = (after: RunListKey) => [sql`${after.createdAt}::timestamptz`, sql`${after.id}::uuid`];

/** What {@link RunRepository.list} filters on, how many rows it reads, from where, in which view. */
export interface RunListFilter {
  statuses: string[];
  workItemId?: string;
  definitionId?: string;
  limit: number;
  after?: RunListKey;
  view?: 'basic' | 'full';
}

/**
 * How a status update changes its run, decided from the update alone and applied in SQL to the run as it
 * stands (RunRepository.recordStatusUpdates); the same rules as folding it in memory. At most one of
 * `start`, `phase` and `finish`.
 */
export interface RunChange {
  /** When the update happened: a run's start or end time. */
  at: Date;
  /** The run started: RUNNING (and its start time, unless set) unless it has ended. */
  start?: boolean;
  /**
   * An update about a phase: the phase's entry in `state.phases` (added at the end when missing) gets
   * `set` and loses `unset`; the run moves to the phase unless it has ended, and a QUEUED run starts.
   */
  phase?: { phase: string; set: Record<string, unknown>; unset: string[] };
  /** Merged into `state.summary` (top-level keys). */
  summary?: object;
  /** The run ended with `status`, unless it already had: its end time, the phase it stopped at, its error. */
  finish?: { status: string; phase?: string; error?: string };
}

/** Statuses of a finished run (folding never moves a run out of one). */
const TERMINAL_STATUSES = ['RUN_STATUS_COMPLETED', 'RUN_STATUS_FAILED', 'RUN_STATUS_CANCELLED', 'RUN_STATUS_HANDED_OFF'];

/** Fields of a run that folding a status update may change. */
export type RunProgress = Pick<RunRow, 'status' | 'phase' | 'state' | 'startedAt' | 'finishedAt'>;

/** Every column of a run but `basic_state`: what the repository reads and returns as a RunRow. */
const runColumns = (({ basicState, ...columns }) => (void basicState, columns))(getTableColumns(runs));

/**
 * The columns a list reads. The basic view (RUN_VIEW_BASIC) reads the state without its bulky parts
 * (`basic_state`, which Postgres keeps up to date; see the schema), so those never leave Postgres
 * and no run's state is cut at read time; the full view reads `state`.
 */
function listColumns(view: RunListFilter['view']) {
  return { ...runColumns, ...(view === 'full' ? {} : { state: sql<RunRow['state']>`${runs.basicState}` }) };
}

/** Runs and their status updates. */
export class RunRepository {
  constructor(private readonly db: Db) {}

  /** Ids of the tenant's runs that begin with `prefix` (a short id), at most `limit`. */
  idsWithPrefix(tenantId: string, prefix: string, limit: number): Promise<string[]> {
    return idsWithPrefix(this.db, 'run', tenantId, prefix, limit);
  }

  async insert(row: NewRunRow): Promise<RunRow> {
    const rows = await this.db.insert(runs).values(row).returning(runColumns);
    return rows[0]!;
  }

  /**
   * Inserts a run at the end of its lane (`row.branchKey`) under the lane's lock and returns it with
   * the lane's head: the oldest unfinished run of the lane, the only one that may execute.
   */
  async insertInLane(row: NewRunRow & { branchKey: string }): Promise<{ row: RunRow; head: RunRow }> {
    return this.db.transaction(async (tx) => {
      await lockLane(tx, row.tenantId, row.branchKey);
      const [inserted] = await tx.insert(runs).values(row).returning(runColumns);
      return { row: inserted!, head: (await laneHead(tx, row.tenantId, row.branchKey)) ?? inserted! };
    });
  }

  /** Runs automation made for a work item (any revision) that still wait: QUEUED, oldest first. */
  async waitingAutoRuns(tenantId: string, workItemId: string): Promise<RunRow[]> {
    return this.db
      .select(runColumns)
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
      .select(runColumns)
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
    const rows = await this.db.select(runColumns).from(runs).where(where).limit(1);
    return rows[0];
  }

  /**
   * Lists runs, newest first (`created_at` desc, then `id` desc: a stable order), from after `after`
   * (the key of the last run of the previous page) when given. Each row carries its key
   * (`listKey`: `created_at` to the microsecond, and the id). Every filter reads its page from an index
   * in that order: runs (tenant, created_at, id), (tenant, status, …) or (tenant, definition, …), and
   * for a work item run_work_items (tenant, work item, created_at, run id), joined to runs by id.
   */
  async list(tenantId: string, f: RunListFilter): Promise<Array<RunRow & { listKey: RunListKey }>> {
    const rows = await this.listQuery(tenantId, f);
    return rows.map(({ keyTime, ...row }) => ({ ...row, listKey: { createdAt: keyTime, id: row.id } }));
  }

  /** The query {@link list} runs, not run yet (`.toSQL()` gives its SQL, e.g. to EXPLAIN it). */
  listQuery(tenantId: string, f: RunListFilter) {
    const columns = { ...listColumns(f.view), keyTime: keyTime(runs.createdAt) as SQL<string> };
    const where = [];
    if (f.statuses.length) where.push(inArray(runs.status, f.statuses));
    if (f.definitionId) where.push(eq(runs.definitionId, f.definitionId));
    if (f.workItemId) {
      // The page comes from run_work_items' index, in its order (the same created_at and id as the run's).
      where.push(eq(runWorkItems.tenantId, tenantId), eq(runWorkItems.workItemId, f.workItemId), eq(runs.tenantId, tenantId));
      if (f.after) where.push(afterKey('desc', [runWorkItems.createdAt, runWorkItems.runId], afterRun(f.after)));
      return this.db
        .select(columns)
        .from(runWorkItems)
        .innerJoin(runs, eq(runs.id, runWorkItems.runId))
        .where(and(...where))
        .orderBy(desc(runWorkItems.createdAt), desc(runWorkItems.runId))
        .limit(f.limit);
    }
    where.push(eq(runs.tenantId, tenantId));
    if (f.after) where.push(afterKey('desc', [runs.createdAt, runs.id], afterRun(f.after)));
    return this.db
      .select(columns)
      .from(runs)
      .where(and(...where))
      .orderBy(desc(runs.createdAt), desc(runs.id))
      .limit(f.limit);
  }

  /** Runs of any tenant still in `status` that were created before `before`, oldest first, a page at a time. */
  async listStale(status: string, before: Date, limit: number, offset = 0): Promise<RunRow[]> {
    return this.db
      .select(runColumns)
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
        .returning(runColumns);
      if (row && isTerminalStatus(row.status)) await addFollowup(tx, row, 'finished');
      return row;
    });
  }

  /** Changes a run's progress; a change that ends the run queues its follow-up in the same transaction. */
  async setProgress(id: string, progress: Partial<RunProgress>): Promise<RunRow | undefined> {
    return this.db.transaction(async (tx) => {
      const [before] = await tx.select({ status: runs.status }).from(runs).where(eq(runs.id, id)).for('update');
      const [row] = await tx.update(runs).set(progress).where(eq(runs.id, id)).returning(runColumns);
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
   * Stores status updates of one run, in their order, all or none, each once per run id + sequence (a
   * stored one is a duplicate and changes nothing); the new ones change the run and queue their
   * follow-ups. `run.tenantId` set: only a run of that tenant is changed. Undefined when there is no such
   * run; for a run of another tenant nothing is stored and `results` is empty (`tenantId` is the run's).
   * - One update: one statement (one round trip, atomic; {@link recordStatusUpdateSql}) that applies its
   *   `change` in SQL to the run as it stands (the run's state never leaves Postgres).
   * - Several: the run is written once for the whole batch, with the same outcome as storing them one at
   *   a time: one transaction of two statements (the run locked and read with the new updates inserted;
   *   the run, with the new ones folded in order by `fold`, the in-memory twin of `change`, written with
   *   its follow-ups).
   */
  async recordStatusUpdates(
    run: { id: string; tenantId?: string },
    updates: Array<{ sequence: number; update: StatusUpdateJson; change: RunChange }>,
    fold: (current: RunProgress, update: StatusUpdateJson) => RunProgress,
  ): Promise<{ tenantId: string; results: RecordedStatusUpdate[] } | undefined> {
    const ofTenant = (tenantId: string) => run.tenantId === undefined || tenantId === run.tenantId;
    if (updates.length === 1) {
      const result = await recordOne(this.db, run, updates[0]!);
      return result && { tenantId: result.tenantId, results: ofTenant(result.tenantId) ? [result] : [] };
    }
    return this.db.transaction(async (tx) => {
      const rows = updates.map((u) => ({ sequence: u.sequence, kind: u.update.kind ?? '', payload: u.update }));
      const res = await tx.execute<BatchRow>(sql`
        with cur as (
          select id, tenant_id, status, phase, state, to_jsonb(started_at) as started_at, to_jsonb(finished_at) as finished_at from runs where id = ${run.id} for update
        ), ins as (
          insert into status_updates (run_id, sequence, tenant_id, kind, payload)
          select cur.id, v.sequence, cur.tenant_id, v.kind, v.payload
          from cur, jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as v(sequence int, kind text, payload jsonb)
          where ${run.tenantId ?? null}::text is null or cur.tenant_id = ${run.tenantId ?? null}::text
          order by v.sequence
          on conflict do nothing
          returning sequence
        )
        select cur.*, coalesce((select array_agg(sequence) from ins), '{}') as inserted from cur`);
      const row = res.rows[0];
      if (!row) return undefined;
      if (!ofTenant(row.tenant_id)) return { tenantId: row.tenant_id, results: [] };
      const inserted = new Set(row.inserted.map(Number));
      const before: RunProgress = {
        status: row.status,
        phase: row.phase,
        // As folding in SQL does, a state without a list of phases (none stored yet) has an empty one.
        state: Array.isArray(row.state.phases) ? row.state : { ...row.state, phases: [] },
        startedAt: row.started_at === null ? null : new Date(row.started_at),
        finishedAt: row.finished_at === null ? null : new Date(row.finished_at),
      };
      let progress = before;
      const results = updates.map(({ sequence, update }): RecordedStatusUpdate => {
        if (!inserted.has(sequence)) return { tenantId: row.tenant_id, duplicate: true, followups: [] };
        const was = progress.status;
        progress = fold(progress, update);
        const finished = !isTerminalStatus(was) && isTerminalStatus(progress.status);
        return { tenantId: row.tenant_id, duplicate: false, status: progress.status, followups: followupsOf(update, finished) };
      });
      if (!inserted.size) return { tenantId: row.tenant_id, results };
      const events = [...new Set(results.flatMap((r) => r.followups))];
      // A time folding did not change stays as stored (to the microsecond).
      const at = (now: Date | null, was: Date | null, column: SQL) => (now === was ? column : sql`${now?.toISOString() ?? null}::timestamptz`);
      await tx.execute(sql`
        with upd as (
          update runs set status = ${progress.status}, phase = ${progress.phase}, state = ${JSON.stringify(progress.state)}::jsonb,
            started_at = ${at(progress.startedAt, before.startedAt, sql`started_at`)}, finished_at = ${at(progress.finishedAt, before.finishedAt, sql`finished_at`)},
            last_sequence = greatest(last_sequence, ${Math.max(...inserted)}::int)
          where id = ${run.id}
          returning id, tenant_id
        )
        insert into run_followups (run_id, tenant_id, event)
        select upd.id, upd.tenant_id, e.event from upd, unnest(${`{${events.join(',')}}`}::text[]) as e(event)
        on conflict do nothing`);
      return { tenantId: row.tenant_id, results };
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

/** What storing one status update did: the run's tenant, whether it was stored before, the run's status after it, the follow-ups it queued. */
export interface RecordedStatusUpdate {
  tenantId: string;
  duplicate: boolean;
  status?: string;
  followups: string[];
}

/** The row {@link recordStatusUpdateSql} answers. */
type RecordRow = {
  tenant_id: string;
  inserted: boolean;
  status: string | null;
  finished: boolean | null;
};

/** The row of the first statement of {@link RunRepository.recordStatusUpdates}: the run as locked, the sequences inserted. */
type BatchRow = {
  id: string;
  tenant_id: string;
  status: string;
  phase: string;
  state: RunState;
  /** ISO 8601 (JSON), to the microsecond. */
  started_at: string | null;
  finished_at: string | null;
  inserted: Array<number | string>;
};

/** Runs {@link recordStatusUpdateSql} and reads its answer. */
async function recordOne(
  db: Db,
  run: { id: string; tenantId?: string },
  { sequence, update, change }: { sequence: number; update: StatusUpdateJson; change: RunChange },
): Promise<RecordedStatusUpdate | undefined> {
  const res = await db.execute<RecordRow>(recordStatusUpdateSql(run, sequence, update, change));
  return recorded(res.rows[0], update);
}

/** What the statement's answer row says (none: there is no such run). */
function recorded(row: RecordRow | undefined, update: StatusUpdateJson): RecordedStatusUpdate | undefined {
  if (!row) return undefined;
  if (!row.inserted) return { tenantId: row.tenant_id, duplicate: true, followups: [] };
  return { tenantId: row.tenant_id, duplicate: false, status: row.status ?? undefined, followups: followupsOf(update, Boolean(row.finished)) };
}

/**
 * The follow-ups a new update queues (with the update itself, so they cannot be lost): `finished` when it
 * ended the run, `preview_live` when it says the run's preview went live.
 */
function followupsOf(update: StatusUpdateJson, finished: boolean): string[] {
  return [...(finished ? ['finished'] : []), ...(update.kind === 'STATUS_UPDATE_KIND_PREVIEW_LIVE' ? ['preview_live'] : [])];
}

/** The one statement of {@link RunRepository.recordStatusUpdates} for a single update (exported to EXPLAIN it). */
export function recordStatusUpdateSql(run: { id: string; tenantId?: string }, sequence: number, update: StatusUpdateJson, change: RunChange): SQL {
  const terminal = sql.raw(`r.status in (${TERMINAL_STATUSES.map((x) => `'${x}'`).join(', ')})`);
  const at = sql`${change.at.toISOString()}::timestamptz`;
  const set: SQL[] = [sql`last_sequence = greatest(r.last_sequence, ${sequence})`];
  let state = sql`r.state`;
  if (change.phase) {
    const { phase, set: fields, unset } = change.phase;
    const phases = sql`coalesce(r.state->'phases', '[]'::jsonb)`;
    const idx = sql`(select min(n) - 1 from jsonb_array_elements(${phases}) with ordinality e(p, n) where p->>'phase' = ${phase})`;
    state = sql`jsonb_set(${state}, '{phases}', case when ${idx} is null
        then ${phases} || jsonb_build_array(${JSON.stringify({ phase, ...fields })}::jsonb)
        else jsonb_set(${phases}, array[${idx}::text], ((${phases}->(${idx})::int) - ${`{${unset.join(',')}}`}::text[]) || ${JSON.stringify(fields)}::jsonb) end)`;
    set.push(
      sql`status = case when r.status = 'RUN_STATUS_QUEUED' then 'RUN_STATUS_RUNNING' else r.status end`,
      sql`started_at = case when r.status = 'RUN_STATUS_QUEUED' then coalesce(r.started_at, ${at}) else r.started_at end`,
      sql`phase = case when ${terminal} then r.phase else ${phase} end`,
    );
  }
  if (change.summary) {
    state = sql`jsonb_set(${state}, '{summary}', case when jsonb_typeof(r.state->'summary') = 'object' then r.state->'summary' else '{}'::jsonb end || ${JSON.stringify(change.summary)}::jsonb)`;
  }
  if (change.start) {
    set.push(
      sql`status = case when ${terminal} then r.status else 'RUN_STATUS_RUNNING' end`,
      sql`started_at = case when ${terminal} then r.started_at else coalesce(r.started_at, ${at}) end`,
    );
  }
  if (change.finish) {
    const { status, phase, error } = change.finish;
    set.push(sql`status = case when ${terminal} then r.status else ${status} end`, sql`finished_at = case when ${terminal} then r.finished_at else ${at} end`);
    if (phase) set.push(sql`phase = case when ${terminal} then r.phase else ${phase} end`);
    if (error !== undefined) state = sql`case when ${terminal} then ${state} else jsonb_set(${state}, '{error}', to_jsonb(${error}::text)) end`;
  }
  set.push(sql`state = ${state}`);
  const finished = sql.raw(`upd.status <> '' and upd.status not in (${UNFINISHED_STATUSES.map((x) => `'${x}'`).join(', ')})`);
  const wasUnfinished = sql.raw(`(cur.status = '' or cur.status in (${UNFINISHED_STATUSES.map((x) => `'${x}'`).join(', ')}))`);
  const previewLive = update.kind === 'STATUS_UPDATE_KIND_PREVIEW_LIVE';
  return sql`
      with cur as (
        select id, tenant_id, status from runs where id = ${run.id} for update
      ), ins as (
        insert into status_updates (run_id, sequence, tenant_id, kind, payload)
        select id, ${sequence}, tenant_id, ${update.kind ?? ''}, ${JSON.stringify(update)}::jsonb from cur
        where ${run.tenantId ?? null}::text is null or tenant_id = ${run.tenantId ?? null}::text
        on conflict do nothing
        returning run_id
      ), upd as (
        update runs r set ${sql.join(set, sql`, `)}
        where r.id = ${run.id} and exists (select 1 from ins)
        returning r.id, r.tenant_id, r.status
      ), fu as (
        insert into run_followups (run_id, tenant_id, event)
        select upd.id, upd.tenant_id, 'finished' from upd, cur where ${finished} and ${wasUnfinished}
        union all
        select upd.id, upd.tenant_id, 'preview_live' from upd where ${previewLive}
        on conflict do nothing
      )
      select cur.tenant_id, exists (select 1 from ins) as inserted, upd.status, (${finished} and ${wasUnfinished}) as finished
      from cur left join upd on true`;
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
    .select(runColumns)
    .from(runs)
    .where(and(eq(runs.tenantId, tenantId), eq(runs.branchKey, branchKey), inArray(runs.status, UNFINISHED_STATUSES)))
    .orderBy(asc(runs.queueSeq))
    .limit(1);
  return rows[0];
}

export type { RunState };
