/**
 * `make bench`, the API part: ListWorkflowRuns against the SQL the repository runs for it, at
 * BENCH_API_RUNS runs of one tenant (default 100,000), for each filter (none, status, definition,
 * work item), in the basic view (the default) and the full view. The runs are copies of one real
 * completed run (its phases with output tails, evidence, summary), so each is as large as a real one.
 * "The SQL" is the repository's own query (RunRepository.list, through drizzle and pg), as the
 * handler runs it; the API adds auth, filters, the row → protobuf conversion and the transport.
 * Each measurement alternates API call and SQL, BENCH_API_REPEAT times (default 15); medians.
 */
import { performance } from 'node:perf_hooks';
import { toBinary } from '@bufbuild/protobuf';
import { loadStackConfig, stackDir } from '@ameide/config';
import { ListWorkflowRunsResponseSchema, RunStatus, RunView } from '@ameide/contracts';
import { openDatabase, RunRepository } from '@ameide/db';
import { createOrigin, sampleDefinition, startStack, SAMPLE_REPO } from '@ameide/devstack';
import { createWorkflowServiceClient } from '@ameide/sdk';
import { join } from 'node:path';

const RUNS = Number(process.env.BENCH_API_RUNS ?? 100_000);
const REPEAT = Number(process.env.BENCH_API_REPEAT ?? 15);
const PAGE = 100;
/** Work items the copies spread over (so a work item has RUNS / ITEMS runs). */
const ITEMS = 5000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

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
    console.log(`\nListWorkflowRuns, ${PAGE} runs a page, median of ${REPEAT} (API call vs the same SQL, alternated)`);
    console.log(`${'filter'.padEnd(12)}${'view'.padEnd(7)}${'API ms'.padStart(8)}${'SQL ms'.padStart(8)}${'API/SQL'.padStart(9)}${'page bytes'.padStart(12)}`);
    for (const f of filters) {
      for (const view of [RunView.BASIC, RunView.FULL]) {
        const apiMs: number[] = [];
        const sqlMs: number[] = [];
        let bytes = 0;
        for (let k = 0; k < REPEAT; k++) {
          let t = performance.now();
          const res = await api.listWorkflowRuns({ ...f.req, pageSize: PAGE, view });
          apiMs.push(performance.now() - t);
          bytes = toBinary(ListWorkflowRunsResponseSchema, res).length;
          t = performance.now();
          await repo.list(tenant, { statuses: [], ...f.repo, limit: PAGE + 1, view: view === RunView.FULL ? 'full' : 'basic' });
          sqlMs.push(performance.now() - t);
        }
        const a = median(apiMs);
        const s = median(sqlMs);
        console.log(
          `${f.name.padEnd(12)}${(view === RunView.BASIC ? 'basic' : 'full').padEnd(7)}${a.toFixed(1).padStart(8)}${s.toFixed(1).padStart(8)}${(a / s).toFixed(2).padStart(8)}×${String(bytes).padStart(12)}`,
        );
      }
    }
    return 0;
  } finally {
    await database.close();
    await stack.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
