import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { toJson } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { ApplicationFailure } from '@temporalio/common';
import { governanceV1 } from '@ameide/contracts';
import { DefinitionRepository, openDatabase, PlanRepository, RunRepository, type Database, type RunState } from '@ameide/db';
import { createDatabase } from '@ameide/devstack';
import { createBearerInterceptor, type GovernanceServiceClient } from '@ameide/sdk';
import { cli } from '../../../../packages/cli/src/main.js';
import type { Principal } from '../../src/auth.js';
import type { GovernanceDeps } from '../../src/governance/deps.js';
import { notificationRoutes } from '../../src/handlers/notifications.js';
import { messageIdOf, notificationActivities } from '../../src/notifications/activities.js';
import { verifyWebhookSignature } from '../../src/notifications/webhook.js';
import { startApiServer, type ApiServer } from '../../src/server.js';
import { closedPort, startSmtpServer } from '../support/servers.js';

const SECRET = 'whsec_0123456789abcdef';
const PUBLIC_URL = 'https://ameide.test';

/** Callers of the test server, by token: people of tenant acme, and one of globex. */
const PEOPLE: Record<string, Principal> = {
  alice: { tenantId: 'acme', subject: 'alice', service: false },
  bob: { tenantId: 'acme', subject: 'bob', service: false },
  carol: { tenantId: 'acme', subject: 'carol', service: false },
  dave: { tenantId: 'acme', subject: 'dave', service: false },
  erin: { tenantId: 'globex', subject: 'erin', service: false },
};

interface Hook {
  url: string;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
  verified: boolean;
}

/** A webhook receiver: records every POST (its signature checked with SECRET); `/gone` answers 410, anything else 204. */
async function startReceiver(): Promise<{ base: string; received: Hook[]; close(): Promise<void> }> {
  const received: Hook[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const signature = req.headers['x-ameide-signature-256'];
      received.push({
        url: req.url ?? '',
        body,
        headers: req.headers,
        verified: typeof signature === 'string' && verifyWebhookSignature(body, signature, SECRET),
      });
      res.writeHead(req.url === '/gone' ? 410 : 204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** The failure `p` rejects with. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

const connectError = async (p: Promise<unknown>) => ConnectError.from(await rejection(p));

describe('notifications: the follow-up activities and the notification center', () => {
  let database: Database;
  let server: ApiServer;
  let hook: Awaited<ReturnType<typeof startReceiver>>;
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  let deps: GovernanceDeps;
  let acts: ReturnType<typeof notificationActivities>;
  let api: Record<keyof typeof PEOPLE, GovernanceServiceClient>;
  let downUrl: string;
  const events = new EventEmitter().setMaxListeners(0);
  const seed = { definitionId: '', planId: '' };

  beforeAll(async () => {
    const url = await createDatabase(inject('postgresUrl'), `notify_${randomUUID().slice(0, 8)}`);
    database = await openDatabase(url);
    [hook, smtp] = await Promise.all([startReceiver(), startSmtpServer()]);
    downUrl = `http://127.0.0.1:${await closedPort()}/hook`;
    deps = {
      db: database.db,
      startRun: () => Promise.reject(new Error('not used')),
      notifications: { smtpUrl: smtp.url, mailFrom: 'Ameide <ameide@ameide.test>', maxAttempts: 3, retryInitialMs: 10, retryMaxMs: 100, publicUrl: PUBLIC_URL },
      events,
    };
    acts = notificationActivities(deps);
    server = await startApiServer({
      routes: (router) => router.service(governanceV1.GovernanceService, notificationRoutes(deps)),
      authenticate: (token) => Promise.resolve(PEOPLE[token]),
      host: '127.0.0.1',
      port: 0,
      timeouts: { headersMs: 10_000, requestMs: 60_000, idleMs: 60_000 },
    });
    const client = (token: string) =>
      createClient(
        governanceV1.GovernanceService,
        createConnectTransport({ baseUrl: server.url, httpVersion: '1.1', interceptors: [createBearerInterceptor(token)] }),
      );
    api = Object.fromEntries(Object.keys(PEOPLE).map((p) => [p, client(p)])) as typeof api;

    // A definition and a plan of acme's work item PBI-7, which alice requested and bob follows.
    const def = (await new DefinitionRepository(database.db).insert('acme', 'app', { repoUrl: '/srv/repos/app.git', agentCommand: 'true' }, {}))!;
    const plan = await new PlanRepository(database.db).insert(
      'acme',
      def.id,
      { definitionId: def.id, definitionName: 'app', definitionVersion: 1, workItems: [{ id: 'PBI-7', title: 'Add login (plan)' }] },
      {},
    );
    seed.definitionId = def.id;
    seed.planId = plan.id;
    await database.pool.query(
      `insert into work_items (tenant_id, id, revision, spec, readiness, state, profile, ready) values ('acme', 'PBI-7', 1, $1, '{}', 'WORK_ITEM_STATE_BACKLOG', 'scrum', false)`,
      [JSON.stringify({ title: 'Add login', requester: 'alice', subscribers: ['bob', 'alice'] })],
    );
  });

  afterAll(async () => {
    await server?.close();
    await Promise.all([hook?.close(), smtp?.close()]);
    await database?.close();
  });

  /** Stores a run of the plan as it would be after its events. */
  async function insertRun(o: { status: string; state?: Partial<RunState>; workItemIds?: string[]; tenantId?: string }): Promise<string> {
    const id = randomUUID();
    const started = new Date(Date.now() - 90_000);
    await new RunRepository(database.db).insert({
      id,
      tenantId: o.tenantId ?? 'acme',
      planId: seed.planId,
      planVersion: 1,
      definitionId: seed.definitionId,
      workflowId: `coding-run-${id}`,
      status: o.status,
      phase: 'PHASE_REPORT',
      spec: { definitionName: 'app', methodology: {}, workItemIds: o.workItemIds ?? ['PBI-7'], trigger: 'TRIGGER_MANUAL' },
      state: { phases: [], ...o.state },
      annotations: {},
      startedAt: started,
      finishedAt: o.status === 'RUN_STATUS_RUNNING' ? null : new Date(),
    });
    return id;
  }

  const deliveries = async (runId: string) => (await api.alice.listDeliveries({ runId })).deliveries;
  const byAddress = (list: governanceV1.Delivery[], address: string) => list.find((d) => d.address === address)!;
  let completedRun = '';

  it('refuses bad subscriptions naming the field, and never returns a secret', async () => {
    const badUrl = await connectError(api.alice.putSubscription({ channel: 'webhook', address: 'ftp://hooks.example.com/x', secret: SECRET }));
    expect(badUrl.code).toBe(Code.InvalidArgument);
    expect(badUrl.rawMessage).toMatch(/^address: must be an http\(s\) URL/);
    const noUrl = await connectError(api.alice.putSubscription({ channel: 'webhook', address: 'not a url', secret: SECRET }));
    expect(noUrl.rawMessage).toMatch(/^address: /);
    const short = await connectError(api.alice.putSubscription({ channel: 'webhook', address: `${hook.base}/a`, secret: 'short-secret' }));
    expect(short.code).toBe(Code.InvalidArgument);
    expect(short.rawMessage).toMatch(/^secret: must be at least 16 characters/);
    const mail = await connectError(api.bob.putSubscription({ channel: 'email', address: 'bob at example' }));
    expect(mail.rawMessage).toMatch(/^address: must be an e-mail address/);
    const channel = await connectError(api.bob.putSubscription({ channel: 'sms', address: '+4100' }));
    expect(channel.rawMessage).toBe('channel: must be one of in_app, webhook, email');
    const item = await connectError(api.bob.putSubscription({ channel: 'in_app', workItemId: 'bad id!' }));
    expect(item.rawMessage).toMatch(/^work_item_id: /);
    // The request limits hold the new fields too.
    const long = await connectError(api.alice.listNotifications({ person: 'p'.repeat(300) }));
    expect(long.code).toBe(Code.InvalidArgument);
    expect(long.rawMessage).toMatch(/^person: must be at most 256 bytes/);

    // alice: a webhook for PBI-7 and the same URL for everything (one delivery per address), and one that refuses for good.
    const own = (await api.alice.putSubscription({ channel: 'webhook', address: `${hook.base}/alice`, secret: SECRET, workItemId: 'PBI-7' })).subscription!;
    expect(own.person).toBe('alice');
    expect(own.hasSecret).toBe(true);
    expect(JSON.stringify(toJson(governanceV1.SubscriptionSchema, own))).not.toContain(SECRET);
    const again = (await api.alice.putSubscription({ channel: 'webhook', address: `${hook.base}/alice`, secret: `${SECRET}-rotated`, workItemId: 'PBI-7' }))
      .subscription!;
    expect(again.id).toBe(own.id);
    await api.alice.putSubscription({ channel: 'webhook', address: `${hook.base}/alice`, secret: SECRET, workItemId: 'PBI-7' });
    await api.alice.putSubscription({ channel: 'webhook', address: `${hook.base}/alice`, secret: SECRET });
    // bob: e-mail for everything; carol: the notification center only; dave: a webhook that is down, for PBI-7.
    await api.bob.putSubscription({ channel: 'email', address: 'bob@example.test' });
    await api.carol.putSubscription({ channel: 'in_app' });
    await api.dave.putSubscription({ channel: 'webhook', address: downUrl, secret: SECRET, workItemId: 'PBI-7' });
    // globex's erin follows everything of globex only.
    await api.erin.putSubscription({ channel: 'in_app' });

    const subs = (await api.carol.listSubscriptions({})).subscriptions;
    expect(subs.map((s) => `${s.person}:${s.channel}:${s.workItemId}`).sort()).toEqual([
      'alice:webhook:*',
      'alice:webhook:PBI-7',
      'bob:email:*',
      'carol:in_app:*',
      'dave:webhook:PBI-7',
    ]);
    expect((await api.carol.listSubscriptions({ person: 'alice' })).subscriptions).toHaveLength(2);
    expect((await api.erin.listSubscriptions({})).subscriptions.map((s) => s.person)).toEqual(['erin']);
  });

  it('makes one notification per person and one delivery per subscription, however often it is prepared', async () => {
    completedRun = await insertRun({
      status: 'RUN_STATUS_COMPLETED',
      state: {
        summary: {
          branch: 'ameide/pbi-7',
          baseCommit: 'a'.repeat(40),
          headCommit: 'b'.repeat(40),
          filesChanged: 2,
          insertions: 10,
          deletions: 1,
          testReport: { format: 'junit', passed: 5, failed: 0 },
        },
        done: { profile: 'scrum', met: true, rules: [{ rule: 'tests_pass', passed: true, detail: '5 passed' }] },
      },
    });
    await database.pool.query(
      `insert into evidence (tenant_id, run_id, kind, name, uri, sha256, size_bytes, media_type, provenance) values
       ('acme', $1, 'diff', 'diff.patch', 'file:///e/diff.patch', $2, 1234, 'text/x-diff', '{}'),
       ('acme', $1, 'transcript', 'transcripts/test.log', 'file:///e/test.log', $3, 99, 'text/plain', '{}')`,
      [completedRun, 'c'.repeat(64), 'd'.repeat(64)],
    );
    const first = await acts.prepareNotifications({ runId: completedRun, tenantId: 'acme', event: 'finished' });
    const second = await acts.prepareNotifications({ runId: completedRun, tenantId: 'acme', event: 'finished' });
    expect(second.deliveryIds.sort()).toEqual(first.deliveryIds.sort());
    // alice's two subscriptions share one address: one delivery; bob's e-mail; dave's webhook. carol has none.
    expect(first.deliveryIds).toHaveLength(3);

    const { rows } = await database.pool.query<{ person: string; event: string; n: number }>(
      `select person, event, count(*)::int as n from notifications where run_id = $1 group by person, event order by person`,
      [completedRun],
    );
    expect(rows).toEqual(['alice', 'bob', 'carol', 'dave'].map((person) => ({ person, event: 'run_completed', n: 1 })));
    const list = await deliveries(completedRun);
    expect(list.map((d) => `${d.channel} ${d.state} ${d.attempts}`).sort()).toEqual(['email pending 0', 'webhook pending 0', 'webhook pending 0']);
    expect(list.every((d) => d.event === 'run_completed' && d.runId === completedRun)).toBe(true);

    const alices = (await api.alice.listNotifications({})).notifications;
    expect(alices).toHaveLength(1);
    expect(alices[0]!.subject).toBe('[ameide] PBI-7 "Add login" — run completed, Definition of Done met');
    expect(alices[0]!.body).toContain('diff.patch');
    expect(alices[0]!.body).toContain(`${PUBLIC_URL}/runs/${completedRun}`);
    // Other tenants see none of it.
    expect((await api.erin.listNotifications({})).notifications).toHaveLength(0);
    expect((await api.erin.listDeliveries({})).deliveries).toHaveLength(0);
  });

  it('delivers a signed webhook and an e-mail once, however often the delivery runs', async () => {
    const list = await deliveries(completedRun);
    const toAlice = byAddress(list, `${hook.base}/alice`);
    const toBob = byAddress(list, 'bob@example.test');
    await acts.deliverNotification({ deliveryId: toAlice.id });
    await acts.deliverNotification({ deliveryId: toAlice.id });
    await acts.deliverNotification({ deliveryId: toBob.id });
    await acts.deliverNotification({ deliveryId: toBob.id });

    const receipts = hook.received.filter((r) => r.url === '/alice');
    expect(receipts).toHaveLength(1);
    expect(receipts[0]!.verified).toBe(true);
    expect(receipts[0]!.headers['x-ameide-delivery']).toBe(toAlice.id);
    const payload = JSON.parse(receipts[0]!.body.toString('utf8')) as Record<string, any>;
    expect(payload.id).toBe(toAlice.id);
    expect(payload.event).toBe('run_completed');
    expect(payload.run).toMatchObject({
      id: completedRun,
      status: 'completed',
      work_item_id: 'PBI-7',
      title: 'Add login',
      branch: 'ameide/pbi-7',
      files_changed: 2,
    });
    expect(payload.run.tests).toEqual({ passed: 5, failed: 0, skipped: 0, failing_tests: [] });
    expect(payload.dod.met).toBe(true);
    expect(payload.evidence.map((e: { name: string }) => e.name)).toEqual(['diff.patch', 'transcripts/test.log']);
    expect(payload.links.run).toBe(`${PUBLIC_URL}/runs/${completedRun}`);

    const mails = smtp.received.filter((m) => m.messageId === messageIdOf(toBob.id));
    expect(mails).toHaveLength(1);
    expect(mails[0]!.subject).toBe('[ameide] PBI-7 "Add login" — run completed, Definition of Done met');
    expect(mails[0]!.headers.get('x-ameide-delivery')).toBe(toBob.id);

    const after = await deliveries(completedRun);
    for (const id of [toAlice.id, toBob.id]) {
      const d = after.find((x) => x.id === id)!;
      expect(d.state).toBe('delivered');
      expect(d.attempts).toBe(1);
      expect(d.deliveredTime).toBeDefined();
    }
    // Preparing again now hands back only what is still to deliver.
    const again = await acts.prepareNotifications({ runId: completedRun, tenantId: 'acme', event: 'finished' });
    expect(again.deliveryIds).toEqual([byAddress(after, downUrl).id]);
  });

  it('counts the attempts of a receiver that is down, retryably, and shows its dead letter', async () => {
    const toDave = byAddress(await deliveries(completedRun), downUrl);
    for (let attempt = 1; attempt <= 2; attempt++) {
      const err = await rejection(acts.deliverNotification({ deliveryId: toDave.id }));
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect((err as ApplicationFailure).nonRetryable).toBe(false);
      expect((err as ApplicationFailure).message).toMatch(/could not reach the webhook at http:\/\/127\.0\.0\.1:\d+/);
      const d = byAddress(await deliveries(completedRun), downUrl);
      expect(d.attempts).toBe(attempt);
      expect(d.state).toBe('failed');
      expect(d.lastError).toMatch(/could not reach the webhook/);
    }
    await acts.deadLetterNotification({ deliveryId: toDave.id, error: 'could not reach the webhook (after 2 attempts)' });
    await acts.deadLetterNotification({ deliveryId: toDave.id, error: 'could not reach the webhook (after 2 attempts)' });
    // A dead letter is not tried again.
    await acts.deliverNotification({ deliveryId: toDave.id });

    const dead = (await api.alice.listDeliveries({ state: 'dead_lettered' })).deliveries;
    expect(dead.map((d) => [d.id, d.attempts, d.lastError])).toEqual([[toDave.id, 2, 'could not reach the webhook (after 2 attempts)']]);
    expect((await connectError(api.alice.listDeliveries({ state: 'lost' }))).rawMessage).toBe(
      'state: must be one of pending, delivered, failed, dead_lettered',
    );
    expect((await connectError(api.alice.listDeliveries({ runId: 'nope' }))).rawMessage).toBe('run_id: must be a run id or its first 6 or more characters');
    expect((await api.alice.listDeliveries({ channel: 'email' })).deliveries.map((d) => d.address)).toEqual(['bob@example.test']);

    const stats = Object.fromEntries((await api.alice.getNotificationStats({})).channels.map((c) => [c.channel, c]));
    expect(Object.keys(stats)).toEqual(['in_app', 'webhook', 'email']);
    expect(stats.in_app).toMatchObject({ notifications: 4n, delivered: 4n });
    expect(stats.webhook).toMatchObject({ notifications: 2n, attempts: 3n, delivered: 1n, failed: 0n, deadLettered: 1n, pending: 0n });
    expect(stats.email).toMatchObject({ notifications: 1n, attempts: 1n, delivered: 1n, deadLettered: 0n, pending: 0n });
    // One delivered webhook and one e-mail: every percentile is its latency (creation to delivery).
    for (const c of [stats.webhook!, stats.email!]) {
      expect(c.latencyP50Ms).toBeGreaterThan(0);
      expect(c.latencyP50Ms).toBeLessThan(60_000);
      expect([c.latencyP95Ms, c.latencyP99Ms]).toEqual([c.latencyP50Ms, c.latencyP50Ms]);
    }
    expect((await api.erin.getNotificationStats({})).channels.map((c) => c.notifications)).toEqual([0n, 0n, 0n]);
  });

  it('fails for good, not retryably, when the receiver refuses or no SMTP server is configured', async () => {
    const run = await insertRun({ status: 'RUN_STATUS_CANCELLED' });
    const gone = (await api.carol.putSubscription({ channel: 'webhook', address: `${hook.base}/gone`, secret: SECRET, workItemId: 'PBI-7' })).subscription!;
    const { deliveryIds } = await acts.prepareNotifications({ runId: run, tenantId: 'acme', event: 'finished' });
    const list = await deliveries(run);
    expect(list.every((d) => d.event === 'run_cancelled')).toBe(true);
    const refused = await rejection(acts.deliverNotification({ deliveryId: byAddress(list, `${hook.base}/gone`).id }));
    expect((refused as ApplicationFailure).nonRetryable).toBe(true);
    expect((refused as ApplicationFailure).message).toMatch(/^the webhook answered 410/);

    const noSmtp = notificationActivities({ ...deps, notifications: { ...deps.notifications, smtpUrl: undefined } });
    const toBob = byAddress(list, 'bob@example.test');
    const err = await rejection(noSmtp.deliverNotification({ deliveryId: toBob.id }));
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toBe('no SMTP server configured (AMEIDE_SMTP_URL)');
    const failed = byAddress(await deliveries(run), 'bob@example.test');
    expect([failed.state, failed.attempts, failed.lastError]).toEqual(['failed', 1, 'no SMTP server configured (AMEIDE_SMTP_URL)']);
    expect(deliveryIds).toContain(toBob.id);
    await api.carol.deleteSubscription({ id: gone.id });
  });

  it('announces a live preview with both URLs, by e-mail once', async () => {
    // A local preview: the URLs are the router's, reported with the run's preview_live update (its summary).
    const url = 'http://run-0a1b2c3d.acme.preview.localhost:8090/';
    const aliasUrl = 'http://pbi-7.acme.preview.localhost:8090/';
    const run = await insertRun({ status: 'RUN_STATUS_RUNNING', state: { summary: { branch: 'ameide/pbi-7', previewUrl: url, previewAliasUrl: aliasUrl } } });
    await database.pool.query(
      `insert into previews (run_id, tenant_id, work_item_id, provider, state, target) values ($1, 'acme', 'PBI-7', 'local', 'live', '127.0.0.1:9')`,
      [run],
    );
    const { deliveryIds } = await acts.prepareNotifications({ runId: run, tenantId: 'acme', event: 'preview_live' });
    expect(deliveryIds).toHaveLength(3);
    const toBob = byAddress(await deliveries(run), 'bob@example.test');
    await acts.deliverNotification({ deliveryId: toBob.id });
    await acts.deliverNotification({ deliveryId: toBob.id });
    const mails = smtp.received.filter((m) => m.messageId === messageIdOf(toBob.id));
    expect(mails).toHaveLength(1);
    expect(mails[0]!.subject).toContain(`preview live: ${url}`);
    expect(mails[0]!.text).toContain(url);
    expect(mails[0]!.text).toContain(aliasUrl);
    expect(mails[0]!.html).toContain(`<a href="${url}">`);
    const n = (await api.bob.listNotifications({})).notifications.find((x) => x.runId === run)!;
    expect(n.event).toBe('preview_live');
    expect(n.workItemId).toBe('PBI-7');

    // A command preview's URLs are the ones its deploy printed, stored with the preview.
    const deployed = await insertRun({ status: 'RUN_STATUS_RUNNING' });
    await database.pool.query(
      `insert into previews (run_id, tenant_id, work_item_id, provider, state, url, alias_url) values ($1, 'acme', 'PBI-7', 'command', 'live', 'https://pr-7.example.app/', 'https://pbi-7.example.app/')`,
      [deployed],
    );
    await acts.prepareNotifications({ runId: deployed, tenantId: 'acme', event: 'preview_live' });
    const hookOf = await acts.prepareNotifications({ runId: deployed, tenantId: 'acme', event: 'preview_live' });
    const toAlice = byAddress(await deliveries(deployed), `${hook.base}/alice`);
    expect(hookOf.deliveryIds).toContain(toAlice.id);
    await acts.deliverNotification({ deliveryId: toAlice.id });
    const payload = JSON.parse(hook.received.find((r) => r.headers['x-ameide-delivery'] === toAlice.id)!.body.toString('utf8')) as { preview: unknown };
    expect(payload.preview).toEqual({ url: 'https://pr-7.example.app/', alias_url: 'https://pbi-7.example.app/' });

    // A run whose preview has no URL yet announces nothing.
    const quiet = await insertRun({ status: 'RUN_STATUS_RUNNING' });
    await database.pool.query(`insert into previews (run_id, tenant_id, work_item_id, provider, state) values ($1, 'acme', 'PBI-7', 'local', 'live')`, [quiet]);
    expect(await acts.prepareNotifications({ runId: quiet, tenantId: 'acme', event: 'preview_live' })).toEqual({ deliveryIds: [] });
  });

  it('tells of a failed run and its impediment, of a Definition of Done not met, and of runs without work item to "*" subscribers only', async () => {
    const failed = await insertRun({
      status: 'RUN_STATUS_HANDED_OFF',
      state: { error: 'test phase failed: exit 1', summary: { handoffUri: 'file:///h.tar.gz' } },
    });
    await database.pool.query(
      `insert into impediments (tenant_id, cause_key, cause, reason, phase, run_id, work_item_id, handoff_uri) values ('acme', $2, 'run_handed_off', 'tests fail', 'test', $1, 'PBI-7', 'file:///h.tar.gz')`,
      [failed, `run:${failed}`],
    );
    await acts.prepareNotifications({ runId: failed, tenantId: 'acme', event: 'finished' });
    const events = async (run: string, person: string) =>
      (await api.alice.listNotifications({ person })).notifications
        .filter((n) => n.runId === run)
        .map((n) => n.event)
        .sort();
    expect(await events(failed, 'dave')).toEqual(['impediment_raised', 'run_failed']);
    const subjects = (await api.alice.listNotifications({})).notifications.filter((n) => n.runId === failed).map((n) => n.subject);
    expect(subjects.sort()).toEqual([
      '[ameide] PBI-7 "Add login" — impediment raised: tests fail',
      '[ameide] PBI-7 "Add login" — run handed off: test phase failed',
    ]);

    const undone = await insertRun({
      status: 'RUN_STATUS_COMPLETED',
      state: { done: { met: false, rules: [{ rule: 'tests_pass', passed: false, detail: 'no tests ran' }] } },
    });
    await acts.prepareNotifications({ runId: undone, tenantId: 'acme', event: 'finished' });
    expect(await events(undone, 'bob')).toEqual(['dod_failed']);

    const planOnly = await insertRun({ status: 'RUN_STATUS_FAILED', workItemIds: [] });
    await acts.prepareNotifications({ runId: planOnly, tenantId: 'acme', event: 'finished' });
    const { rows } = await database.pool.query<{ person: string }>(`select person from notifications where run_id = $1 order by person`, [planOnly]);
    // Not dave (PBI-7 only), nor the work item's requester and subscribers as such: alice, bob and carol follow "*".
    expect(rows.map((r) => r.person)).toEqual(['alice', 'bob', 'carol']);

    // A run that has not finished has nothing to tell; one that does not exist fails for good.
    const running = await insertRun({ status: 'RUN_STATUS_RUNNING' });
    expect(((await rejection(acts.prepareNotifications({ runId: running, tenantId: 'acme', event: 'finished' }))) as ApplicationFailure).nonRetryable).toBe(
      true,
    );
    expect(
      ((await rejection(acts.prepareNotifications({ runId: randomUUID(), tenantId: 'acme', event: 'finished' }))) as ApplicationFailure).nonRetryable,
    ).toBe(true);
    expect(((await rejection(acts.prepareNotifications({ runId: running, tenantId: 'globex', event: 'finished' }))) as ApplicationFailure).nonRetryable).toBe(
      true,
    );
  });

  it('lists, marks read and streams a person’s notifications, waking the stream at once', async () => {
    const before = await api.carol.listNotifications({});
    expect(before.unread).toBe(BigInt(before.notifications.length));
    expect(before.notifications.length).toBeGreaterThan(2);
    // Newest first.
    const seqOrder = before.notifications.map((n) => n.createTime!.seconds);
    expect([...seqOrder].sort((a, b) => Number(b - a))).toEqual(seqOrder);

    const one = before.notifications[0]!;
    expect((await api.carol.markNotificationsRead({ ids: [one.id] })).marked).toBe(1n);
    expect((await api.carol.markNotificationsRead({ ids: [one.id] })).marked).toBe(0n);
    // Someone else's notification is not carol's to mark.
    const bobs = (await api.bob.listNotifications({})).notifications[0]!;
    expect((await api.carol.markNotificationsRead({ ids: [bobs.id] })).marked).toBe(0n);
    const unread = await api.carol.listNotifications({ unreadOnly: true });
    expect(unread.notifications.map((n) => n.id)).not.toContain(one.id);
    expect(unread.unread).toBe(before.unread - 1n);
    expect((await connectError(api.carol.markNotificationsRead({ ids: ['x'] }))).rawMessage).toBe('ids[0]: must be a notification id');

    // The stream: every existing notification in seq order, then a new one as soon as it is made.
    const abort = new AbortController();
    const seen: governanceV1.Notification[] = [];
    let woke: (() => void) | undefined;
    const watching = (async () => {
      try {
        for await (const res of api.carol.watchNotifications({}, { signal: abort.signal })) {
          seen.push(res.notification!);
          woke?.();
        }
      } catch (err) {
        if (!abort.signal.aborted) throw err;
      }
    })();
    const until = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`saw ${seen.length} of ${n} notifications`)), 10_000);
        woke = () => {
          if (seen.length >= n) {
            clearTimeout(timer);
            resolve();
          }
        };
        woke();
      });
    await until(before.notifications.length);
    expect(seen.map((n) => n.id)).toEqual([...before.notifications].reverse().map((n) => n.id));

    const run = await insertRun({ status: 'RUN_STATUS_COMPLETED' });
    const started = Date.now();
    await acts.prepareNotifications({ runId: run, tenantId: 'acme', event: 'finished' });
    await until(before.notifications.length + 1);
    expect(Date.now() - started).toBeLessThan(900);
    expect(seen.at(-1)).toMatchObject({ runId: run, event: 'run_completed', person: 'carol' });
    abort.abort();
    await watching;

    expect((await api.carol.markNotificationsRead({})).marked).toBe(BigInt(before.notifications.length));
    expect((await api.carol.listNotifications({})).unread).toBe(0n);
  });

  it('deletes subscriptions of the caller’s tenant only', async () => {
    const sub = (await api.carol.putSubscription({ channel: 'email', address: 'carol@example.test', workItemId: 'PBI-7' })).subscription!;
    expect((await connectError(api.erin.deleteSubscription({ id: sub.id }))).code).toBe(Code.NotFound);
    await api.carol.deleteSubscription({ id: sub.id });
    expect((await connectError(api.carol.deleteSubscription({ id: sub.id }))).code).toBe(Code.NotFound);
    expect((await connectError(api.carol.deleteSubscription({ id: 'nope' }))).code).toBe(Code.NotFound);
  });

  it('serves the CLI: lists, stats as a table, dead letters, subscribe', async () => {
    const out: string[] = [];
    const o = { out: (l: string) => out.push(l) };
    const run = (argv: string) => cli(argv.split(' '), o, { clients: { governance: api.alice } });

    await run('notifications stats');
    const table = out.pop()!.split('\n');
    expect(table[0]).toMatch(/^channel\s+notifications\s+attempts\s+delivered\s+failed\s+dead-lettered\s+pending\s+p50\s+p95\s+p99$/);
    expect(table.map((l) => l.split(/\s+/)[0])).toEqual(['channel', 'in_app', 'webhook', 'email']);

    await run('notifications deliveries --state dead_lettered');
    expect(out.pop()).toMatch(/ dead_lettered +2 attempts +webhook +run_completed .*\n {4}last error: could not reach the webhook \(after 2 attempts\)$/);

    await run('notifications list');
    const lines = out.pop()!.split('\n');
    expect(lines.at(-1)).toMatch(/^\d+ unread$/);
    expect(lines.some((l) => l.includes('run_completed') && l.includes('PBI-7'))).toBe(true);

    await run('notifications subscribe --channel webhook --address https://hooks.example.com/a --secret 0123456789abcdef0 --work-item PBI-9');
    expect(out.pop()).toMatch(/^subscribed: [0-9a-f-]{36} {2}alice +webhook PBI-9 +https:\/\/hooks\.example\.com\/a {2}\(signed\)$/);
    await run('notifications read --all');
    expect(out.pop()).toMatch(/^marked \d+ notifications? read$/);
    expect((await api.alice.listNotifications({})).unread).toBe(0n);
  });
});
