import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@connectrpc/connect';
import { RunStatus, type ListWorkflowRunsRequest } from '@ameide/contracts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ListWorkflowRunsRequestSchema } from '@ameide/contracts';
import { applySample, type Harness, MULTIPLY, refusal, sampleOrigin, startHarness } from '../support/harness.js';

/** ListWorkflowRuns a page at a time: page_token / next_page_token (no worker: the runs stay queued). */
describe('ListWorkflowRuns pages', () => {
  let h: Harness;
  /** Every run of tenant acme, newest first, as one long page lists them. */
  let all: string[];

  beforeAll(async () => {
    h = await startHarness();
    await applySample(h.acme, sampleOrigin(h));
    const { plan } = await h.acme.createPlan({ definition: 'sample', workItems: [{ ...MULTIPLY, id: 'PAGE-1' }] });
    for (let i = 0; i < 6; i++) await h.acme.startWorkflowRun({ planId: plan!.id });
    await h.acme.startWorkflowRun({ definition: 'sample', workItems: [{ ...MULTIPLY, id: 'PAGE-2' }] });
    // Two more runs created at the very same instant: the order falls back on the id.
    const [some] = (await h.app.database.pool.query<{ id: string }>(`select id from runs where tenant_id = 'acme' limit 1`)).rows;
    for (const id of [randomUUID(), randomUUID()]) {
      await h.app.database.pool.query(
        `insert into runs (id, tenant_id, plan_id, plan_version, definition_id, workflow_id, status, phase, spec, state, created_at)
         select $1::uuid, tenant_id, plan_id, plan_version, definition_id, 'coding-run-' || $1::text, status, phase, spec, state, '2020-01-02T03:04:05.123456Z'
         from runs where id = $2`,
        [id, some!.id],
      );
    }
    all = (await h.acme.listWorkflowRuns({})).runs.map((r) => r.id);
    expect(all).toHaveLength(9);
  });
  afterAll(() => h?.stop());

  /** Every page of a list, following next_page_token. */
  async function pages(req: Omit<MessageInitShape<typeof ListWorkflowRunsRequestSchema>, '$typeName'>): Promise<string[][]> {
    const out: string[][] = [];
    let pageToken = '';
    do {
      const res = await h.acme.listWorkflowRuns({ ...req, pageToken });
      out.push(res.runs.map((r) => r.id));
      pageToken = res.nextPageToken;
    } while (pageToken && out.length < 20);
    return out;
  }

  it('pages through every run once, newest first, in a stable order (ties by id)', async () => {
    const got = await pages({ pageSize: 3 });
    expect(got.map((p) => p.length)).toEqual([3, 3, 3]);
    expect(got.flat()).toEqual(all);
    expect(new Set(got.flat()).size).toBe(9);
    // The two runs of the same instant come last (oldest), the greater id first.
    const tied = all.slice(-2);
    expect(tied).toEqual([...tied].sort().reverse());
    // Pages of another size cover the same runs in the same order.
    expect((await pages({ pageSize: 4 })).flat()).toEqual(all);
    expect((await pages({ pageSize: 2 })).map((p) => p.length)).toEqual([2, 2, 2, 2, 1]);
  });

  it('pages a filtered list within its filters', async () => {
    const filter = { workItemId: 'PAGE-1', statuses: [RunStatus.QUEUED] } satisfies Partial<ListWorkflowRunsRequest>;
    const one = (await h.acme.listWorkflowRuns(filter)).runs.map((r) => r.id);
    expect(one.length).toBeGreaterThanOrEqual(6);
    const got = await pages({ ...filter, pageSize: 2 });
    expect(got.flat()).toEqual(one);
    expect(got.at(-1)!.length).toBeGreaterThan(0);
  });

  it('refuses a token of another list or a made-up one, naming page_token', async () => {
    const first = await h.acme.listWorkflowRuns({ pageSize: 2 });
    expect(first.nextPageToken).not.toBe('');
    const other = await refusal(h.acme.listWorkflowRuns({ pageSize: 2, workItemId: 'PAGE-1', pageToken: first.nextPageToken }));
    expect(other.code).toBe(Code.InvalidArgument);
    expect(other.rawMessage).toMatch(/^page_token: was returned for other filters/);
    const forged = await refusal(h.acme.listWorkflowRuns({ pageToken: 'bm90LWEtdG9rZW4' }));
    expect(forged.code).toBe(Code.InvalidArgument);
    expect(forged.rawMessage).toMatch(/^page_token: is not a token ListWorkflowRuns returned/);
    // Another tenant's list is another list.
    expect((await refusal(h.globex.listWorkflowRuns({ pageSize: 2, pageToken: first.nextPageToken }))).code).toBe(Code.InvalidArgument);
    // The same filters in another order are the same list.
    const filtered = await h.acme.listWorkflowRuns({ pageSize: 1, statuses: [RunStatus.QUEUED, RunStatus.RUNNING] });
    const next = await h.acme.listWorkflowRuns({ pageSize: 1, statuses: [RunStatus.RUNNING, RunStatus.QUEUED], pageToken: filtered.nextPageToken });
    expect(next.runs).toHaveLength(1);
  });
});
