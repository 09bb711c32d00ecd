import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backlogV1, RunStatus } from '@ameide/contracts';
import { openDatabase, type Database } from '@ameide/db';
import { portFree } from '@ameide/devstack';
import { createBacklogServiceClient, createGovernanceServiceClient, type GovernanceServiceClient } from '@ameide/sdk';
import { followupWorkflowId, type FollowupResult } from '@ameide/temporal';
import { messageIdOf } from '../../services/workflows/src/notifications/activities.js';
import { verifyWebhookSignature } from '../../services/workflows/src/notifications/webhook.js';
import { chaosOrigin, startChaosStack, type ChaosStack } from '../support/chaos-stack.js';
import { applySample } from '../support/harness.js';
import { startSmtpServer } from '../../services/workflows/test/support/servers.js';

/**
 * What follows a finished run (evidence, attestations, the Definition of Done, the impediment, the
 * notifications and their webhook and e-mail deliveries) happens once per run and effect while the
 * processes doing it are SIGKILLed: the workflow service (which runs the follow-up's activities and
 * owns Postgres) right when it stored a run's final status, and while a slow webhook holds a delivery
 * open; the worker (which runs the follow-up workflow) while a delivery is being retried. Judged from
 * outside: the API, row counts in the stack's Postgres, the raw messages a real SMTP server accepted
 * and the requests a webhook receiver got (their delivery ids and signatures).
 */

const SECRET = 'whsec_followups_0123456789';
/** Small retry settings: a delivery is tried 4 times within about 5 s (1 s, then 2 s between attempts). */
const MAX_ATTEMPTS = 4;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until `ok()` returns something truthy (returned), polling every `everyMs`; fails naming `what` after `ms`. */
async function until<T>(what: string, ok: () => T | Promise<T>, ms = 120_000, everyMs = 200): Promise<NonNullable<Awaited<T>>> {
  for (const deadline = Date.now() + ms; ; await sleep(everyMs)) {
    const v = await ok();
    if (v) return v as NonNullable<Awaited<T>>;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000}s`);
  }
}

// --- a real SMTP server ----------------------------------------------------------------------------

/** One message the SMTP server accepted (every DATA, so a message sent twice is here twice). */
interface Mail {
  messageId: string;
  deliveryId: string;
  event: string;
  subject: string;
}

/** The real SMTP server of the workflow service's tests; what it received, as the fields the checks read. */
async function startSmtp(): Promise<{ url: string; received: Mail[]; close(): Promise<void> }> {
  const smtp = await startSmtpServer();
  return {
    url: smtp.url,
    get received(): Mail[] {
      return smtp.received.map((m) => ({
        messageId: m.messageId ?? '',
        deliveryId: String(m.headers.get('x-ameide-delivery') ?? ''),
        event: String(m.headers.get('x-ameide-event') ?? ''),
        subject: m.subject ?? '',
      }));
    },
    close: smtp.close,
  };
}

// --- webhook receivers the test controls ---------------------------------------------------------

/** One webhook request as received (every attempt: a delivery retried is here once per attempt). */
interface Hook {
  path: string;
  deliveryId: string;
  event: string;
  runId: string;
  verified: boolean;
  /** What the receiver answered; 0 when it never answered (the sender went away first). */
  status: number;
}

/** How the receiver answers the `n`th request (from 1) to a path: a status, or `hold` (no answer until the sender goes away). */
type Answer = number | 'hold';

/**
 * Webhook receivers on ports of their own: each records every request (its signature checked with
 * SECRET) and answers as `answer(path, n)` says (204 unless told). `listen` and `close` take one port
 * up and down again (connection refused while down).
 */
function hookReceivers() {
  const received: Hook[] = [];
  const answers = new Map<string, (n: number) => Answer>();
  const servers = new Map<number, http.Server>();
  const held: Array<{ hook: Hook; closed: Promise<void> }> = [];
  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = req.url ?? '';
      const signature = req.headers['x-ameide-signature-256'];
      let runId = '';
      try {
        runId = String((JSON.parse(body.toString('utf8')) as { run?: { id?: unknown } }).run?.id ?? '');
      } catch {
        /* not JSON: the test fails on its run id */
      }
      const hook: Hook = {
        path,
        deliveryId: String(req.headers['x-ameide-delivery'] ?? ''),
        event: String(req.headers['x-ameide-event'] ?? ''),
        runId,
        verified: typeof signature === 'string' && verifyWebhookSignature(body, signature, SECRET),
        status: 0,
      };
      received.push(hook);
      const answer = answers.get(path)?.(received.filter((h) => h.path === path).length) ?? 204;
      if (answer === 'hold') {
        held.push({ hook, closed: new Promise<void>((r) => res.on('close', () => r())) });
        return;
      }
      hook.status = answer;
      res.writeHead(answer).end();
    });
  };
  return {
    received,
    held,
    answer(path: string, how: (n: number) => Answer) {
      answers.set(path, how);
    },
    async listen(port: number) {
      const server = http.createServer(handler);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      });
      servers.set(port, server);
    },
    async close(port?: number) {
      for (const [p, server] of servers) {
        if (port !== undefined && p !== port) continue;
        servers.delete(p);
        await new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        });
      }
    },
  };
}

/** A free port below the kernel's ephemeral range: while its receiver is down, no outgoing connection takes it. */
async function stablePort(taken: Set<number>): Promise<number> {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const top = Math.min(low ?? 32768, 32768);
  for (let i = 0; i < 200; i++) {
    const port = randomInt(20_000, top);
    if (!taken.has(port) && (await portFree(port))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port');
}

// --- the test --------------------------------------------------------------------------------------

/** The work item's people: requester alice, subscribers bob and carol (alice has webhooks, bob e-mail, carol only the notification center). */
const PEOPLE = ['alice', 'bob', 'carol'];

describe('follow-ups of finished runs, exactly once while the service and the worker are SIGKILLed', () => {
  let s: ChaosStack;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let hooks: ReturnType<typeof hookReceivers>;
  let db: Database;
  let gov: GovernanceServiceClient;
  let temporal: Client;
  const ports = { hooks: 0, comesBack: 0, staysDown: 0 };
  const hookUrl = (path: string, port = ports.hooks) => `http://127.0.0.1:${port}${path}`;

  beforeAll(async () => {
    const taken = new Set<number>();
    smtp = await startSmtp();
    hooks = hookReceivers();
    ports.hooks = await stablePort(taken);
    ports.comesBack = await stablePort(taken);
    ports.staysDown = await stablePort(taken);
    await hooks.listen(ports.hooks);
    s = await startChaosStack({
      serviceEnv: {
        AMEIDE_SMTP_URL: smtp.url,
        AMEIDE_NOTIFY_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
        AMEIDE_NOTIFY_RETRY_INITIAL_SECONDS: '1',
        AMEIDE_NOTIFY_RETRY_MAX_SECONDS: '2',
        AMEIDE_RECONCILE_SECONDS: '2',
      },
    });
    db = await openDatabase(s.databaseUrl);
    temporal = new Client({ connection: await Connection.connect({ address: s.temporalAddress }), namespace: 'default' });
    gov = createGovernanceServiceClient({ baseUrl: s.apiUrl, token: s.tokens.acme });

    const origin = chaosOrigin(s);
    // No install step (the sample has no dependencies): shorter runs. One definition whose tests fail (handed off, an impediment).
    await applySample(s.acme, origin, { installCommand: '' }, 'fast');
    await applySample(s.acme, origin, { installCommand: '', testCommand: 'echo "1 failing"; exit 1', testReports: [] }, 'failing');

    // The backlog's work items name their people; a scenario each (FUP-1 … FUP-5).
    const backlog = createBacklogServiceClient({ baseUrl: s.apiUrl, token: s.tokens.acme });
    for (let i = 1; i <= 5; i++) {
      await backlog.upsertWorkItem({
        id: `FUP-${i}`,
        revision: 1n,
        spec: {
          title: `Follow-up ${i}`,
          description: 'Add a multiply function.',
          state: backlogV1.WorkItemState.BACKLOG,
          profile: 'scrum',
          requester: 'alice',
          subscribers: ['bob', 'carol'],
        },
      });
    }
    // bob: e-mail for everything; alice: a webhook per work item (the receiver answers per path);
    // dave: a webhook for FUP-5 that stays down.
    await gov.putSubscription({ person: 'bob', channel: 'email', address: 'bob@example.test' });
    for (let i = 1; i <= 4; i++)
      await gov.putSubscription({ person: 'alice', channel: 'webhook', address: hookUrl(`/FUP-${i}`), secret: SECRET, workItemId: `FUP-${i}` });
    await gov.putSubscription({ person: 'alice', channel: 'webhook', address: hookUrl('/FUP-5', ports.comesBack), secret: SECRET, workItemId: 'FUP-5' });
    await gov.putSubscription({ person: 'dave', channel: 'webhook', address: hookUrl('/FUP-5', ports.staysDown), secret: SECRET, workItemId: 'FUP-5' });
  });

  afterAll(async () => {
    await temporal?.connection.close();
    await db?.close();
    await s?.stop();
    await Promise.all([hooks?.close(), smtp?.close()]);
  });

  const start = async (definition: 'fast' | 'failing', item: string) => {
    const { run } = await s.acme.startWorkflowRun({
      definition,
      workItems: [{ id: item, title: `Follow-up of ${item}`, description: 'Add a multiply function.' }],
    });
    return run!.id;
  };

  const rows = async <T extends object>(sql: string, params: unknown[]) => (await db.pool.query<T & Record<string, unknown>>(sql, params)).rows;

  /** The follow-up's result, once its workflow (started by the service or its reconciler) has ended. */
  async function followup(runId: string, ms = 180_000): Promise<FollowupResult> {
    const handle = temporal.workflow.getHandle(followupWorkflowId(runId, 'finished'));
    const deadline = Date.now() + ms;
    await until(
      `the follow-up of run ${runId} was started`,
      () =>
        handle.describe().then(
          () => true,
          (err: unknown) => {
            if (err instanceof WorkflowNotFoundError) return false;
            throw err;
          },
        ),
      ms,
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        handle.result() as Promise<FollowupResult>,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`the follow-up of run ${runId} did not end within ${ms / 1000}s\n${s.logTail('service', 30)}`)),
            Math.max(0, deadline - Date.now()),
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The run's deliveries (with their person and event), from the stack's Postgres. */
  const deliveriesOf = (runId: string) =>
    rows<{ id: string; person: string; event: string; channel: string; address: string; state: string; attempts: number; last_error: string }>(
      `select d.id, n.person, n.event, d.channel, d.address, d.state, d.attempts, d.last_error
         from notification_deliveries d join notifications n on n.id = d.notification_id
        where n.run_id = $1 order by n.person, n.event, d.channel`,
      [runId],
    );

  /**
   * Every effect of the run's follow-up, once: its evidence (as many rows as files the run left), two
   * attestations, its Definition of Done, its impediment (one, or none), one notification per person
   * and event, one delivery per person, event and subscription, each delivered (or dead-lettered as
   * `deadLettered` says) and received once: one raw e-mail with its own Message-ID, and webhook
   * requests of one delivery id, all signed. Returns the run's deliveries.
   */
  async function expectOnce(runId: string, o: { status: RunStatus; events: string[]; people?: string[]; webhooks: string[]; deadLettered?: string[] }) {
    const run = (await s.acme.getWorkflowRun({ id: runId })).run!;
    expect(run.status).toBe(o.status);
    const completed = o.status === RunStatus.COMPLETED;
    // Evidence: one row per file the run left, each name once.
    const [ev] = await rows<{ n: number; names: number }>(`select count(*)::int as n, count(distinct name)::int as names from evidence where run_id = $1`, [
      runId,
    ]);
    expect(run.summary!.evidence.length).toBeGreaterThan(0);
    expect(ev).toEqual({ n: run.summary!.evidence.length, names: run.summary!.evidence.length });
    // Two signed attestations: SLSA provenance and the test result.
    const att = await rows<{ predicate_type: string }>(`select predicate_type from attestations where run_id = $1 order by predicate_type`, [runId]);
    expect(att).toHaveLength(2);
    expect(new Set(att.map((a) => a.predicate_type)).size).toBe(2);
    // The Definition of Done, evaluated: met by the completed run only.
    expect(run.done).toBeDefined();
    expect(run.done!.met).toBe(completed);
    // The impediment: one for the run that could not finish, none otherwise.
    const imp = await rows<{ cause_key: string; cause: string }>(`select cause_key, cause from impediments where run_id = $1`, [runId]);
    expect(imp.map((i) => i.cause_key)).toEqual(completed ? [] : [`run:${runId}`]);
    // One notification per person and event.
    const people = o.people ?? PEOPLE;
    const notes = await rows<{ person: string; event: string; n: number }>(
      `select person, event, count(*)::int as n from notifications where run_id = $1 group by person, event order by person, event`,
      [runId],
    );
    expect(notes).toEqual(people.flatMap((person) => [...o.events].sort().map((event) => ({ person, event, n: 1 }))));

    // One delivery per person, event and subscription: bob's e-mail, the webhooks.
    const deliveries = await deliveriesOf(runId);
    const expected = o.events.flatMap((event) => [
      { person: 'bob', event, channel: 'email' },
      ...o.webhooks.map((person) => ({ person, event, channel: 'webhook' })),
    ]);
    const key = (d: { person: string; event: string; channel: string }) => `${d.person} ${d.event} ${d.channel}`;
    expect(deliveries.map(key).sort()).toEqual(expected.map(key).sort());
    for (const d of deliveries) {
      const dead = (o.deadLettered ?? []).includes(d.person);
      expect([key(d), d.state]).toEqual([key(d), dead ? 'dead_lettered' : 'delivered']);
      expect(d.attempts).toBeGreaterThanOrEqual(1);
      expect(d.attempts).toBeLessThanOrEqual(MAX_ATTEMPTS);
      if (d.channel === 'email') {
        // Exactly one e-mail per recipient and event: one raw message, its Message-ID the delivery's.
        const mails = smtp.received.filter((m) => m.deliveryId === d.id);
        expect(mails.map((m) => [m.messageId, m.event])).toEqual([[messageIdOf(d.id), d.event]]);
        expect(d.attempts).toBe(1);
      } else {
        // Every request that reached the receiver carries the delivery's one id, its run and event, signed
        // (an attempt on a receiver that was down never arrived); a delivered one was answered 2xx exactly once.
        const got = hooks.received.filter((h) => h.deliveryId === d.id);
        expect(got.length).toBeLessThanOrEqual(d.attempts);
        expect(got.filter((h) => !(h.verified && h.runId === runId && h.event === d.event))).toEqual([]);
        expect(got.filter((h) => h.status >= 200 && h.status < 300)).toHaveLength(dead ? 0 : 1);
      }
    }
    // The API tells the same: each person's notifications of the run, the deliveries and their states.
    for (const person of people) {
      const mine = (await gov.listNotifications({ person })).notifications.filter((n) => n.runId === runId);
      expect(mine.map((n) => n.event).sort()).toEqual([...o.events].sort());
    }
    const listed = (await gov.listDeliveries({ runId })).deliveries;
    expect(listed.map((d) => [d.id, d.state, d.attempts]).sort()).toEqual(deliveries.map((d) => [d.id, d.state, d.attempts]).sort());
    // No e-mail or webhook request of this run that is not one of its deliveries.
    const ids = new Set(deliveries.map((d) => d.id));
    expect(hooks.received.filter((h) => h.runId === runId && !ids.has(h.deliveryId))).toEqual([]);
    return deliveries;
  }

  /** Waits for a run's final status in Postgres, checking every few milliseconds; returns the run that ended first. */
  async function firstFinished(runIds: string[], ms = 180_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const done = await rows<{ id: string }>(`select id from runs where id = any($1::uuid[]) and status not in ('RUN_STATUS_QUEUED', 'RUN_STATUS_RUNNING')`, [
        runIds,
      ]);
      if (done.length) return done[0]!.id;
      if (Date.now() > deadline) throw new Error(`none of the runs ended within ${ms / 1000}s`);
      await sleep(2);
    }
  }

  it('the service, SIGKILLed the moment a run’s final status is stored and relaunched: every effect of both runs happens once', async () => {
    const completed = await start('fast', 'FUP-1');
    const failing = await start('failing', 'FUP-2');
    const first = await firstFinished([completed, failing]);
    const killed = await s.kill('service');
    expect(killed.survivors).toEqual([]);
    // The follow-up row was stored with the status. Its workflow may not have been started yet (the
    // relaunched service's reconciler starts it), or started with its first step in flight in the dead
    // process (Temporal retries that step after its start-to-close timeout, 2 minutes).
    const [outbox] = await rows<{ n: number }>(`select count(*)::int as n from run_followups where run_id = $1 and event = 'finished'`, [first]);
    expect(outbox!.n).toBe(1);
    await s.start('service');

    await followup(completed);
    await followup(failing);
    await expectOnce(completed, { status: RunStatus.COMPLETED, events: ['run_completed'], webhooks: ['alice'] });
    await expectOnce(failing, { status: RunStatus.HANDED_OFF, events: ['impediment_raised', 'run_failed'], webhooks: ['alice'] });
    expect((await rows<{ n: number }>(`select count(*)::int as n from run_followups where started_at is null`, []))[0]!.n).toBe(0);
  });

  let slowRun = '';

  it('the service, SIGKILLed while a slow webhook receiver holds a delivery open, and relaunched: the delivery is retried under its id', async () => {
    // The first request to FUP-3's webhook gets no answer (a slow receiver); later ones 204.
    hooks.answer('/FUP-3', (n) => (n === 1 ? 'hold' : 204));
    slowRun = await start('fast', 'FUP-3');
    const held = await until('the webhook request of FUP-3 arrived', () => hooks.held.find((h) => h.hook.runId === slowRun));
    // bob's e-mail went out meanwhile (its own delivery).
    await until('the e-mail of FUP-3 was delivered', async () => (await deliveriesOf(slowRun)).some((d) => d.channel === 'email' && d.state === 'delivered'));
    await s.kill('service');
    // The service's connection went with it: the receiver never answered that request.
    await held.closed;
    expect(held.hook.status).toBe(0);
    const [d] = (await deliveriesOf(slowRun)).filter((x) => x.channel === 'webhook');
    expect([d!.state, d!.attempts]).toEqual(['pending', 1]);
    await s.start('service');
    // The interrupted attempt is retried once Temporal gives up on it (its start-to-close timeout): checked at the end.
  });

  it('the worker, SIGKILLed while a delivery is being retried (the receiver answers 500), and relaunched: the follow-up completes, once', async () => {
    // FUP-4's webhook answers 500 twice, then 204.
    hooks.answer('/FUP-4', (n) => (n <= 2 ? 500 : 204));
    const id = await start('fast', 'FUP-4');
    await until('the first webhook request of FUP-4 was refused', () => hooks.received.some((h) => h.runId === id && h.status === 500), 180_000, 20);
    const killed = await s.kill('worker');
    expect(killed.survivors).toEqual([]);
    // Without a worker the follow-up stays open, while the service keeps retrying the delivery until the receiver takes it.
    await until('FUP-4 was delivered without a worker', () => hooks.received.some((h) => h.runId === id && h.status === 204), 30_000);
    const open = await temporal.workflow.getHandle(followupWorkflowId(id, 'finished')).describe();
    expect(open.status.name).toBe('RUNNING');
    await s.start('worker');

    const result = await followup(id);
    expect(result.deliveries).toEqual({ delivered: 2, deadLettered: 0 });
    const deliveries = await expectOnce(id, { status: RunStatus.COMPLETED, events: ['run_completed'], webhooks: ['alice'] });
    expect(deliveries.find((d) => d.channel === 'webhook')!.attempts).toBe(3);
  });

  it('a receiver that is down and comes back within the retries gets its delivery once; one that stays down is dead-lettered after the last attempt', async () => {
    // alice's receiver for FUP-5 is down at first and comes back after two refused attempts; dave's never comes up.
    const id = await start('fast', 'FUP-5');
    await until('the second attempt to reach alice’s receiver', async () => (await deliveriesOf(id)).some((d) => d.person === 'alice' && d.attempts >= 2));
    // That attempt is refused at once; the next comes 2 s later.
    await sleep(300);
    const [alices] = (await deliveriesOf(id)).filter((d) => d.person === 'alice');
    expect([alices!.state, alices!.attempts]).toEqual(['failed', 2]);
    expect(alices!.last_error).toMatch(/^could not reach the webhook at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    await hooks.listen(ports.comesBack);

    const result = await followup(id);
    expect(result.deliveries).toEqual({ delivered: 2, deadLettered: 1 });
    const deliveries = await expectOnce(id, {
      status: RunStatus.COMPLETED,
      events: ['run_completed'],
      people: ['alice', 'bob', 'carol', 'dave'],
      webhooks: ['alice', 'dave'],
      deadLettered: ['dave'],
    });
    // alice's receiver got the delivery once, at the first attempt after it came back.
    expect(deliveries.find((d) => d.person === 'alice')!.attempts).toBe(3);
    expect(hooks.received.filter((h) => h.runId === id).map((h) => [h.path, h.status])).toEqual([['/FUP-5', 204]]);
    const daves = deliveries.find((d) => d.person === 'dave')!;
    expect(daves.attempts).toBe(MAX_ATTEMPTS);
    expect(daves.last_error).toMatch(/^could not reach the webhook at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);

    // Visible through the API: the one dead letter, and the stats.
    const dead = (await gov.listDeliveries({ state: 'dead_lettered' })).deliveries;
    expect(dead.map((d) => [d.id, d.runId, d.address, d.attempts])).toEqual([[daves.id, id, hookUrl('/FUP-5', ports.staysDown), MAX_ATTEMPTS]]);
    const stats = Object.fromEntries((await gov.getNotificationStats({})).channels.map((c) => [c.channel, c]));
    expect(stats.webhook!.deadLettered).toBe(1n);
    expect(stats.email!.deadLettered).toBe(0n);
  });

  it('the delivery the killed service held open: retried after its attempt timed out, delivered once under its delivery id', async () => {
    expect(slowRun).not.toBe('');
    await followup(slowRun, 150_000);
    const deliveries = await expectOnce(slowRun, { status: RunStatus.COMPLETED, events: ['run_completed'], webhooks: ['alice'] });
    const hook = deliveries.find((d) => d.channel === 'webhook')!;
    // The receiver got the delivery twice (the cut attempt and its retry), under one id; it answered the second.
    expect(hooks.received.filter((h) => h.deliveryId === hook.id).map((h) => h.status)).toEqual([0, 204]);
    expect(hook.attempts).toBe(2);

    // Across the file: every e-mail was accepted once (no two raw messages share a Message-ID), every
    // webhook delivery answered 2xx once, and nothing is left pending or unstarted.
    expect(new Set(smtp.received.map((m) => m.messageId)).size).toBe(smtp.received.length);
    const ok = hooks.received.filter((h) => h.status >= 200 && h.status < 300).map((h) => h.deliveryId);
    expect(new Set(ok).size).toBe(ok.length);
    const open = await rows<{ state: string; n: number }>(
      `select state, count(*)::int as n from notification_deliveries where state not in ('delivered', 'dead_lettered') group by state`,
      [],
    );
    expect(open).toEqual([]);
    expect((await rows<{ n: number }>(`select count(*)::int as n from run_followups where started_at is null`, []))[0]!.n).toBe(0);
  });
});
