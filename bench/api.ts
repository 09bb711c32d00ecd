/**
 * `make bench`, the API part: ListWorkflowRuns against the SQL the repository runs for it, at
 * BENCH_API_RUNS runs of one tenant (default 100,000), for each filter (none, status, definition,
 * work item), in the basic view (the default) and the full view. The runs are copies of one real
 * completed run (its phases with output tails, evidence, summary), so each is as large as a real one.
 * "The SQL" is the repository's own query (RunRepository.list, through drizzle and pg), as the
 * handler runs it; the API adds auth, filters, the row → protobuf conversion and the transport.
 * Each measurement alternates API call and SQL, BENCH_API_REPEAT times (default 15); medians. A page
 * of one run gives the fixed cost of a call. Beside each ratio, `least`: the ratio the call would have
 * if the service did nothing for the page beyond its SQL (no mapping, encoding or sending of runs),
 * with the fixed cost of a call as it is and the SDK's own decoding of the page (timed in this process).
 * Then, per filter, the plan of that query (EXPLAIN ANALYZE): its indexes, how many rows it read, and
 * whether it scans runs (Seq Scan) or reads more than BENCH_API_PLAN_ROWS rows (default 1,000): the
 * script exits 1 if one does.
 * Last, status ingestion: the real status updates of the template run (run_started, phase_started and
 * phase_finished with output tails, run_finished with the summary), replayed for BENCH_API_INGEST_RUNS
 * fresh runs (default 100) through RecordStatusUpdate with the worker's service credential, through
 * RecordStatusUpdates (a run's updates all in one call), and as plain INSERTs of the same rows into
 * status_updates over one pg connection; one run's updates through each, alternated; one run at a time on
 * each side (concurrency 1), or BENCH_API_INGEST_CONCURRENCY runs at a time on each side (the INSERTs
 * then over as many connections). The goal: the batch at least 0.5× the INSERT rate.
 */
import { performance } from 'node:perf_hooks';
import { fromBinary, fromJson, toBinary, type JsonObject } from '@bufbuild/protobuf';
import { loadStackConfig, stackDir } from '@ameide/config';
import { ListWorkflowRunsResponseSchema, RunStatus, RunView, StatusUpdateSchema } from '@ameide/contracts';
import { openDatabase, RunRepository } from '@ameide/db';
import { createOrigin, ensureCredentials, sampleDefinition, startStack, SAMPLE_REPO } from '@ameide/devstack';
import { createWorkflowServiceClient } from '@ameide/sdk';
import { join } from 'node:path';

const RUNS = Number(process.env.BENCH_API_RUNS ?? 100_000);
const REPEAT = Number(process.env.BENCH_API_REPEAT ?? 15);
const PAGE = 100;
const PLAN_ROWS = Number(process.env.BENCH_API_PLAN_ROWS ?? 1000);
const INGEST_RUNS = Number(process.env.BENCH_API_INGEST_RUNS ?? 100);
const INGEST_CONCURRENCY = Math.max(1, Number(process.env.BENCH_API_INGEST_CONCURRENCY ?? 1));
/** Work items the copies spread over (so a work item has RUNS / ITEMS runs). */
const ITEMS = 5000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** How long the SDK takes to decode a page's bytes into messages (median of 15, after one untimed). */
function decodeMs(page: Uint8Array): number {
  fromBinary(ListWorkflowRunsResponseSchema, page);
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t = performance.now();
    fromBinary(ListWorkflowRunsResponseSchema, page);
    times.push(performance.now() - t);
  }
  return median(times);
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/** What a plan reads: the indexes it uses, the rows its scans return or filter out, whether it scans runs whole. */
function planReads(node: PlanNode, out = { indexes: new Set<string>(), rows: 0, seqScanRuns: false }) {
  if (node['Index Name']) out.indexes.add(node['Index Name']);
  if (node['Relation Name']) {
    const perLoop = (node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0);
    out.rows += perLoop * (node['Actual Loops'] ?? 1);
    if (node['Node Type'] === 'Seq Scan' && node['Relation Name'] === 'runs') out.seqScanRuns = true;
  }
  for (const child of node.Plans ?? []) planReads(child, out);
  return out;
}

async function main(): Promise<number> {
  const cfg = loadStackConfig();
  console.log(`\nAPI at ${RUNS} runs: starting the stack…`);
  const stack = await startStack(cfg, { name: 'bench-api', ephemeral: true });
  const database = await openDatabase(stack.databaseUrl, { migrate: false, max: 2 });
  const db = database.pool;
  const repo = new RunRepository(database.db);
  try {
    const api = createWorkflowServiceClient({ baseUrl: stack.apiUrl, token: stack.devToken });
    const origin = createOrigin(SAMPLE_REPO, join(stackDir(cfg, 'bench-api'), 'origin.git'));
    const def = sampleDefinition(origin);
    await api.applyDefinition(def);
    const other = (await api.applyDefinition({ ...def, name: 'other' })).definition!;
    // One real completed run, the template of every copy.
    const started = (await api.startWorkflowRun({ definition: def.name, workItems: [{ id: 'W-0', title: 'Add a multiply function' }] })).run!;
    for await (const res of api.watchWorkflowRun({ id: started.id })) void res;
    const template = (await api.getWorkflowRun({ id: started.id })).run!;
    if (template.status !== RunStatus.COMPLETED) throw new Error(`the template run did not complete: ${template.error}`);
    const t0 = performance.now();
    await db.query(
      `insert into runs (id, tenant_id, plan_id, plan_version, definition_id, workflow_id, status, phase, spec, state, last_sequence, created_at, started_at, finished_at)
       select gen_random_uuid(), r.tenant_id, r.plan_id, r.plan_version,
              case when i % 2 = 0 then r.definition_id else $3::uuid end,
              'bench-' || i, (array['RUN_STATUS_COMPLETED','RUN_STATUS_FAILED','RUN_STATUS_HANDED_OFF','RUN_STATUS_CANCELLED','RUN_STATUS_COMPLETED'])[1 + i % 5],
              r.phase, jsonb_set(r.spec, '{workItemIds}', jsonb_build_array('W-' || (i % ${ITEMS}))), r.state, r.last_sequence,
              r.created_at - make_interval(secs => i), r.started_at, r.finished_at
       from runs r, generate_series(1, $2::int) i where r.id = $1`,
      [template.id, RUNS, other.id],
    );
    await db.query('analyze runs');
    const row = (await db.query<{ n: string; bytes: string }>(`select count(*) n, avg(pg_column_size(state))::int bytes from runs`)).rows[0]!;
    console.log(`seeded ${row.n} runs in ${((performance.now() - t0) / 1000).toFixed(1)} s (state ${row.bytes} bytes each, stored)`);

    const tenant = template.tenantId;
    const filters = [
      { name: 'none', req: {}, repo: {} },
      { name: 'status', req: { statuses: [RunStatus.FAILED] }, repo: { statuses: ['RUN_STATUS_FAILED'] } },
      { name: 'definition', req: { definition: other.id }, repo: { definitionId: other.id } },
      { name: 'work item', req: { workItemId: 'W-42' }, repo: { workItemId: 'W-42' } },
    ];
    const rows: Array<{ filter: string; view: string; api: number; sql: number; bytes: number; decode: number }> = [];
    for (const f of filters) {
      for (const view of [RunView.BASIC, RunView.FULL]) {
        const apiMs: number[] = [];
        const sqlMs: number[] = [];
        let page = new Uint8Array();
        for (let k = 0; k < REPEAT; k++) {
          let t = performance.now();
          const res = await api.listWorkflowRuns({ ...f.req, pageSize: PAGE, view });
          apiMs.push(performance.now() - t);
          page = toBinary(ListWorkflowRunsResponseSchema, res);
          t = performance.now();
          await repo.list(tenant, { statuses: [], ...f.repo, limit: PAGE + 1, view: view === RunView.FULL ? 'full' : 'basic' });
          sqlMs.push(performance.now() - t);
        }
        rows.push({
          filter: f.name,
          view: view === RunView.BASIC ? 'basic' : 'full',
          api: median(apiMs),
          sql: median(sqlMs),
          bytes: page.length,
          decode: decodeMs(page),
        });
      }
    }

    // The fixed cost of a call (auth, Connect, HTTP, one small row): a page of one run, basic view, measured warm.
    const fixed = { api: [] as number[], sql: [] as number[] };
    for (let k = 0; k < REPEAT; k++) {
      let t = performance.now();
      await api.listWorkflowRuns({ pageSize: 1 });
      fixed.api.push(performance.now() - t);
      t = performance.now();
      await repo.list(tenant, { statuses: [], limit: 2 });
      fixed.sql.push(performance.now() - t);
    }
    const fixedMs = Math.max(0, median(fixed.api) - median(fixed.sql));
    console.log(`\nListWorkflowRuns, ${PAGE} runs a page, median of ${REPEAT} (API call vs the same SQL, alternated)`);
    console.log(
      `${'filter'.padEnd(12)}${'view'.padEnd(7)}${'API ms'.padStart(8)}${'SQL ms'.padStart(8)}${'API/SQL'.padStart(9)}${'page bytes'.padStart(12)}${'decode ms'.padStart(11)}${'least'.padStart(8)}`,
    );
    for (const r of rows) {
      const least = (r.sql + fixedMs + r.decode) / r.sql;
      console.log(
        `${r.filter.padEnd(12)}${r.view.padEnd(7)}${r.api.toFixed(1).padStart(8)}${r.sql.toFixed(1).padStart(8)}${(r.api / r.sql).toFixed(2).padStart(8)}×${String(r.bytes).padStart(12)}${r.decode.toFixed(1).padStart(11)}${least.toFixed(2).padStart(7)}×`,
      );
    }
    {
      const a = median(fixed.api);
      const s = median(fixed.sql);
      console.log(
        `${'1 run'.padEnd(12)}${'basic'.padEnd(7)}${a.toFixed(1).padStart(8)}${s.toFixed(1).padStart(8)}${(a / s).toFixed(2).padStart(8)}×  (a page of one: the fixed cost of a call)`,
      );
    }
    console.log(
      `least: the ratio with no work in the service beyond its SQL: the SQL, the fixed cost of a call as it is (${fixedMs.toFixed(1)} ms: a page of one, less its SQL) and the SDK decoding the page (decode ms, in this process)`,
    );
    console.log(`\nPlans of the repository's queries (EXPLAIN ANALYZE, first page, basic view): a Seq Scan on runs or more than ${PLAN_ROWS} rows read fails`);
    console.log(`${'filter'.padEnd(12)}${'rows read'.padStart(10)}  ${'seq scan'.padEnd(10)}${'verdict'.padEnd(9)}indexes`);
    let failed = 0;
    for (const f of filters) {
      const q = repo.listQuery(tenant, { statuses: [], ...f.repo, limit: PAGE + 1 }).toSQL();
      const res = await db.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`explain (analyze, format json) ${q.sql}`, q.params);
      const p = planReads(res.rows[0]!['QUERY PLAN'][0]!.Plan);
      const ok = !p.seqScanRuns && p.rows <= PLAN_ROWS;
      if (!ok) failed++;
      console.log(
        `${f.name.padEnd(12)}${String(p.rows).padStart(10)}  ${(p.seqScanRuns ? 'yes' : 'no').padEnd(10)}${(ok ? 'ok' : 'FAIL').padEnd(9)}${[...p.indexes].join(', ') || '-'}`,
      );
    }

    await ingestion(stack.databaseUrl, stack.apiUrl, ensureCredentials(join(stackDir(cfg, 'bench-api'), 'credentials.json')).serviceToken, template.id);
    return failed ? 1 : 0;
  } finally {
    await database.close();
    await stack.stop();
  }
}

/**
 * Status ingestion: the template run's real updates, replayed for fresh runs through the API (the
 * worker's credential): one RecordStatusUpdate call per update, and one RecordStatusUpdates call per
 * run with all its updates (the worker sends what piled up while a batch was on its way, so its batches
 * are this or smaller); and as plain INSERTs of the same rows, alternated round by round; INGEST_CONCURRENCY runs at a time on each side
 * (the INSERTs over as many pg connections, each one run's rows in order).
 */
async function ingestion(databaseUrl: string, apiUrl: string, serviceToken: string, templateId: string): Promise<void> {
  const database = await openDatabase(databaseUrl, { migrate: false, max: INGEST_CONCURRENCY });
  const db = database.pool;
  const updates = (
    await db.query<{ kind: string; payload: JsonObject }>(`select kind, payload from status_updates where run_id = $1 order by sequence`, [templateId])
  ).rows;
  // 3 × INGEST_RUNS fresh runs (QUEUED, nothing folded yet), copies of the template: a third each for the single RPC, the batch RPC and the INSERTs.
  const ids = (
    await db.query<{ id: string; tenant_id: string }>(
      `insert into runs (id, tenant_id, plan_id, plan_version, definition_id, workflow_id, status, phase, spec, state)
       select gen_random_uuid(), r.tenant_id, r.plan_id, r.plan_version, r.definition_id, 'ingest-' || i, 'RUN_STATUS_QUEUED', 'PHASE_UNSPECIFIED', r.spec, '{"phases":[]}'
       from runs r, generate_series(1, $2::int) i where r.id = $1 returning id, tenant_id`,
      [templateId, 3 * INGEST_RUNS],
    )
  ).rows;
  const service = createWorkflowServiceClient({ baseUrl: apiUrl, token: serviceToken });
  const conns = await Promise.all(Array.from({ length: INGEST_CONCURRENCY }, () => db.connect()));
  let apiMs = 0;
  let batchMs = 0;
  let sqlMs = 0;
  let payloadBytes = 0;
  const viaApi = async (run: { id: string }) => {
    for (const u of updates) {
      const res = await service.recordStatusUpdate({ update: fromJson(StatusUpdateSchema, { ...u.payload, runId: run.id }) });
      if (res.duplicate) throw new Error('a fresh update was taken for a duplicate');
    }
  };
  const viaBatch = async (run: { id: string }) => {
    const res = await service.recordStatusUpdates({ updates: updates.map((u) => fromJson(StatusUpdateSchema, { ...u.payload, runId: run.id })) });
    if (res.duplicate.length !== updates.length || res.duplicate.some(Boolean)) throw new Error('a fresh update was taken for a duplicate');
  };
  const plain = async (run: { id: string; tenant_id: string }, conn: (typeof conns)[number]) => {
    for (const u of updates) {
      const payload = JSON.stringify({ ...u.payload, runId: run.id });
      payloadBytes += payload.length;
      await conn.query('insert into status_updates (run_id, sequence, tenant_id, kind, payload) values ($1, $2, $3, $4, $5)', [
        run.id,
        Number(u.payload.sequence),
        run.tenant_id,
        u.kind,
        payload,
      ]);
    }
  };
  try {
    for (let i = 0; i < INGEST_RUNS; i += INGEST_CONCURRENCY) {
      const round = ids.slice(3 * i, 3 * Math.min(INGEST_RUNS, i + INGEST_CONCURRENCY));
      let t = performance.now();
      await Promise.all(round.filter((_, k) => k % 3 === 0).map((run) => viaApi(run)));
      apiMs += performance.now() - t;
      t = performance.now();
      await Promise.all(round.filter((_, k) => k % 3 === 1).map((run) => viaBatch(run)));
      batchMs += performance.now() - t;
      t = performance.now();
      await Promise.all(round.filter((_, k) => k % 3 === 2).map((run, k) => plain(run, conns[k]!)));
      sqlMs += performance.now() - t;
    }
  } finally {
    for (const conn of conns) conn.release();
    await database.close();
  }
  const n = INGEST_RUNS * updates.length;
  const apiRate = n / (apiMs / 1000);
  const batchRate = n / (batchMs / 1000);
  const sqlRate = n / (sqlMs / 1000);
  const side = INGEST_CONCURRENCY === 1 ? 'one at a time on each side' : `${INGEST_CONCURRENCY} runs at a time on each side`;
  console.log(
    `\nStatus ingestion: ${INGEST_RUNS} runs × ${updates.length} updates (${Math.round(payloadBytes / n)} bytes each on average), ${side}, alternated`,
  );
  const conn = INGEST_CONCURRENCY === 1 ? 'one connection' : `${INGEST_CONCURRENCY} connections`;
  console.log(`${'RecordStatusUpdate (API: stored once, applied to the run, follow-ups)'.padEnd(72)}${apiRate.toFixed(0).padStart(6)} updates/s`);
  console.log(
    `${`RecordStatusUpdates (API: a run's ${updates.length} updates in one call, one transaction)`.padEnd(72)}${batchRate.toFixed(0).padStart(6)} updates/s`,
  );
  console.log(`${`plain INSERT into status_updates, ${conn}`.padEnd(72)}${sqlRate.toFixed(0).padStart(6)} updates/s`);
  console.log(`${'RecordStatusUpdate / INSERT rate'.padEnd(72)}${(apiRate / sqlRate).toFixed(2).padStart(6)}`);
  const ratio = batchRate / sqlRate;
  console.log(`${'RecordStatusUpdates / INSERT rate (goal ≥ 0.5)'.padEnd(72)}${ratio.toFixed(2).padStart(6)}  ${ratio >= 0.5 ? 'ok' : 'below the goal'}`);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
