import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@connectrpc/connect';
import { createBacklogServiceClient, createGovernanceServiceClient, type BacklogServiceClient, type GovernanceServiceClient } from '@ameide/sdk';
import { applySample, type Harness, MULTIPLY, refusal, sampleOrigin, startHarness } from '../support/harness.js';

/**
 * Every list RPC pages (page_token / next_page_token) in a stable keyset order: each row once, in
 * the documented order, also when rows are added between pages; a token of another list RPC or of
 * other filters is refused. (ListWorkflowRuns: run-pages.test.ts.) No worker: rows are made through
 * the API where that is cheap, else written straight into the service's database.
 */
describe('list RPCs page in a stable order', () => {
  let h: Harness;
  let backlog: BacklogServiceClient;
  let gov: GovernanceServiceClient;
  /** A queued run of tenant acme, copied for every row that needs a run of its own. */
  let seedRun: string;
  let n = 0;
  const q = async (text: string, values: unknown[] = []) => (await h.app.database.pool.query(text, values)).rows as Record<string, unknown>[];
  const ids = async (text: string, values: unknown[] = []) => (await q(text, values)).map((r) => String(r.id));
  /** A time long ago that two rows share: their order falls back on the tie-breaker. */
  const TIE = '2020-01-02T03:04:05.123456Z';

  async function newRun(): Promise<string> {
    const id = randomUUID();
    await q(
      `insert into runs (id, tenant_id, plan_id, plan_version, definition_id, workflow_id, status, phase, spec, state)
       select $1::uuid, tenant_id, plan_id, plan_version, definition_id, 'coding-run-' || $1::text, status, phase, spec, state from runs where id = $2`,
      [id, seedRun],
    );
    return id;
  }

  beforeAll(async () => {
    h = await startHarness();
    backlog = createBacklogServiceClient({ baseUrl: h.apiUrl, token: h.tokens.acme });
    gov = createGovernanceServiceClient({ baseUrl: h.apiUrl, token: h.tokens.acme });
    await applySample(h.acme, sampleOrigin(h));
    seedRun = (await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] })).run!.id;
  });
  afterAll(() => h?.stop());

  interface Page {
    ids: string[];
    next: string;
  }
  /** One list RPC under test, with the filters of the walk (`other`: the same RPC with other filters). */
  interface Case {
    rpc: string;
    list(pageSize: number, pageToken: string): Promise<Page>;
    other?(pageToken: string): Promise<unknown>;
    /** Adds one row the list shows. */
    add(): Promise<void>;
    /** Makes two rows share their order's time (none for lists ordered by a unique key). */
    tie?(): Promise<void>;
    /** The ids the list holds now, in its documented order (read straight from the database). */
    expected(): Promise<string[]>;
  }

  const person = 'pager';
  let notification = '';
  const cases: Case[] = [
    {
      rpc: 'ListDefinitions',
      list: async (pageSize, pageToken) => {
        const r = await h.acme.listDefinitions({ pageSize, pageToken, showDeleted: true });
        return { ids: r.definitions.map((d) => d.id), next: r.nextPageToken };
      },
      other: (pageToken) => h.acme.listDefinitions({ pageSize: 2, pageToken }),
      add: async () => {
        const spec = (await h.acme.getDefinition({ idOrName: 'sample' })).definition!.spec!;
        // Every other one is deleted and made again: a live and a deleted definition of one name.
        const name = `def-${n++ % 2}`;
        const live = (await h.acme.listDefinitions({ pageSize: 1000 })).definitions.find((d) => d.name === name);
        if (live) await h.acme.deleteDefinition({ idOrName: live.id });
        await h.acme.createDefinition({ name, spec });
      },
      // Two deleted definitions of one name deleted at the same instant: by id.
      tie: async () => {
        await q(`update definitions set deleted_at = $1 where tenant_id = 'acme' and name = 'def-0' and deleted_at is not null`, [TIE]);
      },
      expected: () => ids(`select id from definitions where tenant_id = 'acme' order by name, coalesce(deleted_at, 'infinity') desc, id`),
    },
    {
      rpc: 'ListPlans',
      list: async (pageSize, pageToken) => {
        const r = await h.acme.listPlans({ pageSize, pageToken, definition: 'sample' });
        return { ids: r.plans.map((p) => p.id), next: r.nextPageToken };
      },
      other: (pageToken) => h.acme.listPlans({ pageSize: 2, pageToken, workItemId: 'CALC-1' }),
      add: async () => {
        await h.acme.createPlan({ definition: 'sample', workItems: [{ ...MULTIPLY, id: `PLAN-${n++}` }] });
      },
      tie: async () => {
        await q(`update plans set created_at = $1 where id in (select id from plans where tenant_id = 'acme' order by created_at limit 2)`, [TIE]);
      },
      expected: () => ids(`select id from plans where tenant_id = 'acme' order by created_at desc, id desc`),
    },
    {
      rpc: 'ListPullRequests',
      list: async (pageSize, pageToken) => {
        const r = await h.acme.listPullRequests({ pageSize, pageToken });
        return { ids: r.pullRequests.map((p) => p.id), next: r.nextPageToken };
      },
      other: (pageToken) => h.acme.listPullRequests({ pageSize: 2, pageToken, state: 'open' }),
      add: async () => {
        const i = n++;
        await q(
          `insert into pull_requests (id, tenant_id, branch_key, provider, number, repository, title, body, base_branch, head_branch, head_commit, state, first_run_id, last_run_id)
           values ($1, 'acme', $2, 'git', $3, 'origin', 'a change', '', 'main', $2, $4, 'open', $5, $5)`,
          [randomUUID(), `ameide/PR-${i}`, i + 1, 'a'.repeat(40), seedRun],
        );
      },
      tie: async () => {
        await q(`update pull_requests set updated_at = $1 where id in (select id from pull_requests where tenant_id = 'acme' order by updated_at limit 2)`, [
          TIE,
        ]);
      },
      expected: () => ids(`select id from pull_requests where tenant_id = 'acme' order by updated_at desc, id desc`),
    },
    {
      rpc: 'ListPreviews',
      list: async (pageSize, pageToken) => {
        const r = await h.acme.listPreviews({ pageSize, pageToken });
        return { ids: r.previews.map((p) => p.runId), next: r.nextPageToken };
      },
      other: (pageToken) => h.acme.listPreviews({ pageSize: 2, pageToken, state: 'live' }),
      add: async () => {
        await q(
          `insert into previews (run_id, tenant_id, work_item_id, provider, state, stopped_at, stop_reason) values ($1, 'acme', $2, 'local', 'stopped', now(), 'test')`,
          [await newRun(), `PV-${n++}`],
        );
      },
      tie: async () => {
        await q(`update previews set live_at = $1 where run_id in (select run_id from previews where tenant_id = 'acme' order by live_at limit 2)`, [TIE]);
      },
      expected: () => ids(`select run_id as id from previews where tenant_id = 'acme' order by live_at desc, run_id desc`),
    },
    {
      rpc: 'ListWorkItems',
      list: async (pageSize, pageToken) => {
        const r = await backlog.listWorkItems({ pageSize, pageToken });
        return { ids: r.workItems.map((w) => w.id), next: r.nextPageToken };
      },
      other: (pageToken) => backlog.listWorkItems({ pageSize: 2, pageToken, profile: 'scrum' }),
      add: async () => {
        await q(
          `insert into work_items (tenant_id, id, revision, spec, readiness, state, profile, ready) values ('acme', $1, 1, '{"title":"t"}', '{}', 'WORK_ITEM_STATE_BACKLOG', 'scrum', false)`,
          [`WI-${n++}`],
        );
      },
      tie: async () => {
        await q(`update work_items set updated_at = $1 where id in (select id from work_items where tenant_id = 'acme' order by updated_at limit 2)`, [TIE]);
      },
      expected: () => ids(`select id from work_items where tenant_id = 'acme' order by updated_at desc, id desc`),
    },
    {
      rpc: 'ListProfiles',
      list: async (pageSize, pageToken) => {
        const r = await backlog.listProfiles({ pageSize, pageToken });
        return { ids: r.profiles.map((p) => p.name), next: r.nextPageToken };
      },
      add: async () => {
        await q(`insert into profiles (tenant_id, name, spec) values ('acme', $1, '{"description":"d"}')`, [`pf-${String(97 - n++).padStart(3, '0')}`]);
      },
      // The built-in profiles first, in their order, then the tenant's own by name.
      expected: async () => ['scrum', 'safe', 'togaf', ...(await ids(`select name as id from profiles where tenant_id = 'acme' order by name`))],
    },
    {
      rpc: 'ListImpediments',
      list: async (pageSize, pageToken) => {
        const r = await gov.listImpediments({ pageSize, pageToken });
        return { ids: r.impediments.map((i) => i.id), next: r.nextPageToken };
      },
      other: (pageToken) => gov.listImpediments({ pageSize: 2, pageToken, assignee: 'someone' }),
      add: async () => {
        await q(`insert into impediments (tenant_id, cause_key, cause, reason) values ('acme', $1, 'run_failed', 'a test')`, [`test:${n++}`]);
      },
      tie: async () => {
        await q(`update impediments set created_at = $1 where id in (select id from impediments where tenant_id = 'acme' order by created_at limit 2)`, [TIE]);
      },
      expected: () => ids(`select id from impediments where tenant_id = 'acme' order by created_at desc, id desc`),
    },
    {
      rpc: 'ListNotifications',
      list: async (pageSize, pageToken) => {
        const r = await gov.listNotifications({ person, pageSize, pageToken });
        return { ids: r.notifications.map((x) => x.id), next: r.nextPageToken };
      },
      other: (pageToken) => gov.listNotifications({ person, pageSize: 2, pageToken, unreadOnly: true }),
      add: async () => {
        const [row] = await q(
          `insert into notifications (tenant_id, person, event, dedupe_key, subject, body, content) values ('acme', $1, 'run_failed', $2, 's', 'b', '{}') returning id`,
          [person, `test:${n++}`],
        );
        notification = String(row!.id);
      },
      expected: () => ids(`select id from notifications where tenant_id = 'acme' and person = $1 order by seq desc`, [person]),
    },
    {
      rpc: 'ListSubscriptions',
      list: async (pageSize, pageToken) => {
        const r = await gov.listSubscriptions({ pageSize, pageToken });
        return { ids: r.subscriptions.map((s) => s.id), next: r.nextPageToken };
      },
      other: (pageToken) => gov.listSubscriptions({ pageSize: 2, pageToken, person }),
      add: async () => {
        await q(`insert into subscriptions (tenant_id, person, channel, work_item_id) values ('acme', $1, 'in_app', '*')`, [`person-${n++}`]);
      },
      tie: async () => {
        await q(
          `update subscriptions set created_at = $1 where id in (select id from subscriptions where tenant_id = 'acme' order by created_at desc limit 2)`,
          [TIE],
        );
      },
      expected: () => ids(`select id from subscriptions where tenant_id = 'acme' order by created_at, id`),
    },
    {
      rpc: 'ListDeliveries',
      list: async (pageSize, pageToken) => {
        const r = await gov.listDeliveries({ pageSize, pageToken });
        return { ids: r.deliveries.map((d) => d.id), next: r.nextPageToken };
      },
      other: (pageToken) => gov.listDeliveries({ pageSize: 2, pageToken, channel: 'email' }),
      add: async () => {
        // Dead-lettered: nothing tries to deliver it.
        await q(
          `insert into notification_deliveries (tenant_id, notification_id, subscription_id, channel, address, state) values ('acme', $1, $2, 'webhook', 'https://example.test/hook', 'dead_lettered')`,
          [notification, randomUUID()],
        );
      },
      tie: async () => {
        await q(
          `update notification_deliveries set created_at = $1 where id in (select id from notification_deliveries where tenant_id = 'acme' order by created_at limit 2)`,
          [TIE],
        );
      },
      expected: () => ids(`select id from notification_deliveries where tenant_id = 'acme' order by created_at desc, id desc`),
    },
  ];

  async function walk(c: Case, pageSize: number, between?: () => Promise<void>): Promise<string[][]> {
    const pages: string[][] = [];
    let pageToken = '';
    do {
      const page = await c.list(pageSize, pageToken);
      pages.push(page.ids);
      pageToken = page.next;
      if (pages.length === 1 && between) await between();
    } while (pageToken && pages.length < 50);
    return pages;
  }

  /** One token of each list RPC (a page token of its walk). */
  const tokens = new Map<string, string>();

  it.each(cases.map((c) => [c.rpc, c] as const))('%s: every row once, in the documented order, a page at a time', async (_rpc, c) => {
    for (let i = 0; i < 5; i++) await c.add();
    await c.tie?.();
    const want = await c.expected();
    expect(want.length).toBeGreaterThanOrEqual(5);
    const pages = await walk(c, 2);
    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages.slice(0, -1).every((p) => p.length === 2)).toBe(true);
    expect(pages.flat()).toEqual(want);
    // Another page size: the same rows in the same order.
    expect((await walk(c, 3)).flat()).toEqual(want);
    tokens.set(c.rpc, (await c.list(2, '')).next);

    // Rows added between pages: none of the others repeats or goes missing, and the order holds.
    const walked = (
      await walk(c, 2, async () => {
        await c.add();
        await c.add();
      })
    ).flat();
    expect(new Set(walked).size).toBe(walked.length);
    expect(walked.filter((id) => want.includes(id))).toEqual(want);
    const now = await c.expected();
    expect(walked).toEqual(now.filter((id) => walked.includes(id)));

    // A token for other filters, and one that is not a token, are refused naming page_token.
    if (c.other) {
      const other = await refusal(c.other(tokens.get(c.rpc)!));
      expect(other.code).toBe(Code.InvalidArgument);
      expect(other.rawMessage).toMatch(/^page_token: was returned for other filters \(/);
    }
    const forged = await refusal(c.list(2, Buffer.from('["x","y",1]').toString('base64url')));
    expect(forged.code).toBe(Code.InvalidArgument);
    expect(forged.rawMessage).toBe(`page_token: is not a token ${c.rpc} returned; start again without it`);
  });

  it("refuses a token of another list RPC, naming page_token and the token's RPC", async () => {
    const runsToken = (await h.acme.listWorkflowRuns({ pageSize: 1 })).nextPageToken;
    for (const [i, c] of cases.entries()) {
      const from = cases[(i + 1) % cases.length]!.rpc;
      const token = tokens.get(from);
      expect(token, from).toBeTruthy();
      const r = await refusal(c.list(2, token!));
      expect(r.code).toBe(Code.InvalidArgument);
      expect(r.rawMessage).toBe(`page_token: was returned by ${from}, not ${c.rpc}; start again without it`);
    }
    const r = await refusal(h.acme.listWorkflowRuns({ pageSize: 2, pageToken: tokens.get('ListPlans')! }));
    expect(r.rawMessage).toBe('page_token: was returned by ListPlans, not ListWorkflowRuns; start again without it');
    expect(runsToken).not.toBe('');
    // Another tenant's list is another list.
    const globexPlans = await refusal(h.globex.listPlans({ pageSize: 2, definition: '', pageToken: tokens.get('ListPlans')! }));
    expect(globexPlans.code).toBe(Code.InvalidArgument);
  });

  it('ListEvidence pages evidence and attestations together, each in its order', async () => {
    const run = await newRun();
    const names = ['b.txt', 'a.txt', 'e.txt', 'c.txt', 'd.txt'];
    for (const name of names)
      await q(
        `insert into evidence (tenant_id, run_id, kind, name, uri, sha256, size_bytes, media_type, provenance) values ('acme', $1, 'file', $2, 'file:///x', $3, 1, 'text/plain', '{}')`,
        [run, name, 'b'.repeat(64)],
      );
    for (const type of ['https://t/3', 'https://t/1', 'https://t/2'])
      await q(
        `insert into attestations (tenant_id, run_id, predicate_type, subjects, artifacts, key_id, development, envelope) values ('acme', $1, $2, '[]', '[]', 'k', true, '{"payloadType":"p","payload":"","signatures":[]}')`,
        [run, type],
      );
    // The same evidence attached to a work item: by time, then name and id.
    await q(
      `insert into relationships (tenant_id, from_kind, from_id, kind, to_kind, to_id) select 'acme', 'evidence', id::text, 'attached_to', 'work_item', 'EV-1' from evidence where run_id = $1`,
      [run],
    );
    await q(`update evidence set created_at = $1 where run_id = $2 and name in ('d.txt', 'e.txt')`, [TIE, run]);

    async function all(sel: { runId?: string; workItemId?: string }, between?: () => Promise<void>) {
      const evidence: string[] = [];
      const attestations: string[] = [];
      let pageToken = '';
      let pages = 0;
      do {
        const r = await gov.listEvidence({ ...sel, pageSize: 2, pageToken });
        evidence.push(...r.evidence.map((e) => e.name));
        attestations.push(...r.attestations.map((a) => a.predicateType));
        pageToken = r.nextPageToken;
        if (++pages === 1) await between?.();
      } while (pageToken && pages < 20);
      return { evidence, attestations, pages };
    }
    const byRun = await all({ runId: run });
    expect(byRun).toEqual({ evidence: ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt'], attestations: ['https://t/1', 'https://t/2', 'https://t/3'], pages: 3 });
    const byItem = await all({ workItemId: 'EV-1' });
    expect(byItem.evidence).toEqual(['d.txt', 'e.txt', 'b.txt', 'a.txt', 'c.txt']);
    expect(byItem.attestations).toEqual([]);
    // Evidence added between pages (after the first page's names) joins; none repeats or goes missing.
    const added = await all({ runId: run }, async () => {
      await q(
        `insert into evidence (tenant_id, run_id, kind, name, uri, sha256, size_bytes, media_type, provenance) values ('acme', $1, 'file', 'a0.txt', 'file:///x', $2, 1, 'text/plain', '{}'), ('acme', $1, 'file', 'c0.txt', 'file:///x', $2, 1, 'text/plain', '{}')`,
        [run, 'b'.repeat(64)],
      );
    });
    expect(added.evidence).toEqual(['a.txt', 'b.txt', 'c.txt', 'c0.txt', 'd.txt', 'e.txt']);

    const first = await gov.listEvidence({ runId: run, pageSize: 2 });
    const other = await refusal(gov.listEvidence({ workItemId: 'EV-1', pageSize: 2, pageToken: first.nextPageToken }));
    expect(other.code).toBe(Code.InvalidArgument);
    expect(other.rawMessage).toMatch(/^page_token: was returned for other filters/);
    const plans = await refusal(gov.listEvidence({ runId: run, pageToken: tokens.get('ListPlans') || 'eA' }));
    expect(plans.rawMessage).toMatch(/^page_token: (was returned by ListPlans, not ListEvidence|is not a token ListEvidence returned)/);
  });
});
