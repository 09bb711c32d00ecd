import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { createWorkflowServiceClient } from '@ameide/sdk';
import { PREVIEW_SUPERSEDED_SIGNAL, previewWorkflowId, RUN_PREVIEW_WORKFLOW } from '@ameide/temporal';
import { MULTIPLY, startHarnessWithRouter, type Harness } from '../../../../tests/support/harness.js';
import { dnsSlug } from '../../src/previews/hosts.js';

/** A preview's server: answers every request with what it received, as JSON; `/stream` answers in two parts. */
interface Target {
  name: string;
  port: number;
  /** Ends the `/stream` answers held open. */
  release(): void;
  close(): Promise<void>;
}

async function startTarget(name: string): Promise<Target> {
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(`${name} first\n`);
        held.push(res);
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json', 'x-target': name, 'set-cookie': ['a=1', 'b=2'] });
      res.end(JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }));
    });
  });
  // An echo protocol: after the switch, every byte comes back.
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: Upgrade\r\nx-target: ${name}\r\n\r\n`);
    socket.pipe(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    name,
    port: (server.address() as net.AddressInfo).port,
    release: () => {
      for (const res of held.splice(0)) res.end(`${name} second\n`);
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Status, headers and body of a request through `call`, or why it failed. */
const code = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error('expected the call to fail');
};

describe('previews and the preview router', () => {
  let h: Harness;
  let routerPort: number;
  let temporal: { client: Client; connection: Connection };
  const targets: Target[] = [];

  beforeAll(async () => {
    h = await startHarnessWithRouter();
    routerPort = h.app.preview!.port;
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    temporal = { connection, client: new Client({ connection }) };
    await h.acme.applyDefinition({ name: 'pv', spec: { repoUrl: '/srv/repos/previews.git', agentCommand: 'true' } });
    await h.globex.applyDefinition({ name: 'pv', spec: { repoUrl: '/srv/repos/previews.git', agentCommand: 'true' } });
  });
  afterAll(async () => {
    await Promise.all(targets.map((t) => t.close()));
    await temporal?.connection.close();
    await h?.stop();
  });

  const target = async (name: string) => {
    const t = await startTarget(name);
    targets.push(t);
    return t;
  };
  /** A run (stored, never executed: no worker polls) of work item `workItemId` for tenant acme (or globex). */
  const run = async (workItemId: string, client = h.acme) =>
    (await client.startWorkflowRun({ definition: 'pv', workItems: [{ ...MULTIPLY, id: workItemId }] })).run!;
  const live = (runId: string, t: Target, extra: Record<string, unknown> = {}) =>
    h.service.recordPreview({ runId, state: 'live', provider: 'local', target: `127.0.0.1:${t.port}`, ...extra }).then((r) => r.preview!);
  const stop = (runId: string, reason: string) => h.service.recordPreview({ runId, state: 'stopped', reason }).then((r) => r.preview!);
  const hostOf = (url: string) => new URL(url).host;
  const runHost = (runId: string, tenant = 'acme') => `run-${runId.slice(0, 8)}.${tenant}.preview.localhost:${routerPort}`;

  /** One request to the router with this Host (fetch cannot set Host). */
  const call = (host: string, o: { method?: string; path?: string; headers?: Record<string, string>; body?: string } = {}) =>
    new Promise<Answer>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: routerPort, method: o.method ?? 'GET', path: o.path ?? '/', headers: { ...o.headers, host }, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(o.body);
    });
  /** The name of the preview server that answered `host`. */
  const who = async (host: string) => {
    const a = await call(host);
    return a.status === 201 ? (JSON.parse(a.body) as { name: string }).name : `${a.status} ${a.body}`;
  };

  it('routes the run URL and the alias to the preview: method, path, headers and body pass through; answers stream; upgrades are piped', async () => {
    const a = await run('WEB-1');
    const t = await target('a');
    const expire = new Date(Date.now() + 3600_000);
    const p = await live(a.id, t, { expireTime: timestampFromDate(expire) });
    expect(p).toMatchObject({
      runId: a.id,
      workItemId: 'WEB-1',
      provider: 'local',
      state: 'live',
      aliased: true,
      url: `http://run-${a.id.slice(0, 8)}.acme.preview.localhost:${routerPort}/`,
      aliasUrl: `http://web-1.acme.preview.localhost:${routerPort}/`,
      stopReason: '',
    });
    expect(timestampDate(p.expireTime!).getTime()).toBe(expire.getTime());
    expect(p.liveTime).toBeDefined();
    expect(p.stopTime).toBeUndefined();

    // The run URL: Host kept, X-Forwarded-* added, the answer's status and headers (both cookies) back.
    const got = await call(hostOf(p.url), { path: '/some/page?q=1', headers: { 'x-forwarded-for': '10.1.2.3', 'x-custom': 'kept' } });
    expect(got.status).toBe(201);
    expect(got.headers['x-target']).toBe('a');
    expect(got.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    const seen = JSON.parse(got.body) as { method: string; url: string; headers: Record<string, string> };
    expect(seen.method).toBe('GET');
    expect(seen.url).toBe('/some/page?q=1');
    expect(seen.headers).toMatchObject({
      host: hostOf(p.url),
      'x-custom': 'kept',
      'x-forwarded-host': hostOf(p.url),
      'x-forwarded-proto': 'http',
      'x-forwarded-for': '10.1.2.3, 127.0.0.1',
    });

    // The alias (any case), a POST with its body, and a chunked one.
    const post = await call(hostOf(p.aliasUrl).toUpperCase(), {
      method: 'POST',
      path: '/api',
      headers: { 'content-type': 'text/plain' },
      body: 'hello preview',
    });
    expect(JSON.parse(post.body)).toMatchObject({ name: 'a', method: 'POST', url: '/api', body: 'hello preview' });
    const chunked = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: routerPort, method: 'PUT', path: '/up', headers: { host: hostOf(p.aliasUrl) }, agent: false },
        (res) => {
          let s = '';
          res.on('data', (c: Buffer) => (s += c.toString()));
          res.on('end', () => resolve(s));
        },
      );
      req.on('error', reject);
      req.write('part 1, ');
      setTimeout(() => req.end('part 2'), 50);
    });
    expect(JSON.parse(chunked)).toMatchObject({ method: 'PUT', body: 'part 1, part 2', headers: { 'transfer-encoding': 'chunked' } });

    // Streaming: the first part arrives while the preview still holds the answer open.
    const streamed = await new Promise<string[]>((resolve, reject) => {
      const parts: string[] = [];
      const req = http.request({ host: '127.0.0.1', port: routerPort, path: '/stream', headers: { host: hostOf(p.url) }, agent: false }, (res) => {
        res.on('data', (c: Buffer) => {
          parts.push(c.toString());
          if (parts.length === 1) t.release();
        });
        res.on('end', () => resolve(parts));
      });
      req.on('error', reject);
      req.end();
    });
    expect(streamed.join('')).toBe('a first\na second\n');
    expect(streamed[0]).toBe('a first\n');

    // An upgraded connection is piped both ways.
    const echoed = await new Promise<{ status: number; target: string; data: string }>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port: routerPort,
        path: '/ws',
        headers: { host: hostOf(p.aliasUrl), connection: 'Upgrade', upgrade: 'echo' },
        agent: false,
      });
      req.on('upgrade', (res, socket) => {
        socket.once('data', (d: Buffer) => {
          socket.destroy();
          resolve({ status: res.statusCode!, target: String(res.headers['x-target']), data: d.toString() });
        });
        socket.write('ping');
      });
      req.on('error', reject);
      req.end();
    });
    expect(echoed).toEqual({ status: 101, target: 'a', data: 'ping' });

    // Hosts that are no preview's.
    const unknown = await call(`run-00000000.acme.preview.localhost:${routerPort}`);
    expect(unknown).toMatchObject({ status: 404, body: `no preview at run-00000000.acme.preview.localhost:${routerPort}\n` });
    expect(unknown.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect((await call(`web-1.globex.preview.localhost:${routerPort}`)).status).toBe(404);
    expect(await call(`127.0.0.1:${routerPort}`)).toMatchObject({
      status: 404,
      body: `127.0.0.1:${routerPort} is not a preview host (<run-id8 or work item>.<tenant>.preview.localhost)\n`,
    });
  });

  it('two previews of one work item: the alias moves to the newer at once, the older keeps its run URL; then falls back; stopped is 404 saying why; a dead server is 502', async () => {
    const [older, newer] = [await run('WEB-2'), await run('WEB-2')];
    const [to, tn] = [await target('older'), await target('newer')];
    const po = await live(older.id, to);
    const alias = hostOf(po.aliasUrl);
    expect(alias).toBe(`web-2.acme.preview.localhost:${routerPort}`);
    expect(await who(alias)).toBe('older');

    const pn = await live(newer.id, tn);
    expect(pn).toMatchObject({ aliased: true, aliasUrl: po.aliasUrl });
    expect(await who(alias)).toBe('newer');
    expect(await who(runHost(older.id))).toBe('older');
    expect(await who(runHost(newer.id))).toBe('newer');
    const listed = (await h.acme.listPreviews({ workItemId: 'WEB-2' })).previews;
    expect(listed.map((p) => [p.runId, p.aliased])).toEqual([
      [newer.id, true],
      [older.id, false],
    ]);

    // The newer stops: the alias falls back to the older, still live; the newer's URL says why it is gone.
    const stopped = await stop(newer.id, 'expired');
    expect(stopped).toMatchObject({ state: 'stopped', stopReason: 'expired', aliased: false });
    expect(await who(alias)).toBe('older');
    expect(await call(runHost(newer.id))).toMatchObject({
      status: 404,
      body: `no preview at ${runHost(newer.id)}: preview of run ${newer.id} stopped: expired\n`,
    });

    // The older's server goes away without its stop reported: 502.
    await to.close();
    const down = await call(alias);
    expect(down.status).toBe(502);
    expect(down.body).toBe(`preview of run ${older.id} at ${alias} is not answering (ECONNREFUSED)\n`);

    // Both stopped: the alias names the preview that stopped last.
    await stop(older.id, 'superseded by a newer preview of its work item');
    expect(await call(alias)).toMatchObject({
      status: 404,
      body: `no preview at ${alias}: preview of run ${older.id} stopped: superseded by a newer preview of its work item\n`,
    });
  });

  it('serves three previews of different work items at once, each by its alias and its run URL', async () => {
    const items = ['WEB-3', 'web/Login.Page', 'run-deadbeef'];
    const previews = [];
    for (const item of items) {
      const r = await run(item);
      previews.push({ item, runId: r.id, p: await live(r.id, await target(item)) });
    }
    expect(previews.map((x) => hostOf(x.p.aliasUrl).split('.')[0])).toEqual([
      'web-3',
      `web-login-page-${dnsSlug('web/Login.Page').slice(-6)}`,
      dnsSlug('run-deadbeef'),
    ]);
    expect(dnsSlug('run-deadbeef')).toMatch(/^run-deadbeef-[0-9a-f]{6}$/);
    for (const { item, runId, p } of previews) {
      expect(await who(hostOf(p.aliasUrl))).toBe(item);
      expect(await who(hostOf(p.url))).toBe(item);
      expect(await who(runHost(runId))).toBe(item);
    }
  });

  it("RecordPreview is the worker's: users and other tenants' service credentials are refused, bad input names the field, repeats change nothing", async () => {
    const r = await run('WEB-4');
    const t = await target('four');
    const req = { runId: r.id, state: 'live', provider: 'local', target: `127.0.0.1:${t.port}` };
    expect((await code(h.acme.recordPreview(req))).code).toBe(Code.PermissionDenied);
    const globexService = createWorkflowServiceClient({ baseUrl: h.apiUrl, token: h.tokens.globexService });
    const cross = await code(globexService.recordPreview(req));
    expect(cross.code).toBe(Code.PermissionDenied);
    expect(cross.rawMessage).toMatch(/reports for tenant "globex" only/);
    // A tenant's own service credential may.
    const theirs = await run('GX-1', h.globex);
    expect((await globexService.recordPreview({ ...req, runId: theirs.id })).preview!.aliasUrl).toBe(`http://gx-1.globex.preview.localhost:${routerPort}/`);

    const bad = async (over: Record<string, unknown>, field: string) => {
      const err = await code(h.service.recordPreview({ ...req, ...over }));
      expect(err.code, JSON.stringify(over)).toBe(Code.InvalidArgument);
      expect(err.rawMessage.startsWith(`${field}: `), err.rawMessage).toBe(true);
    };
    await bad({ runId: '' }, 'run_id');
    await bad({ state: 'running' }, 'state');
    await bad({ provider: '' }, 'provider');
    await bad({ provider: 'docker' }, 'provider');
    await bad({ target: '' }, 'target');
    await bad({ target: '127.0.0.1' }, 'target');
    await bad({ target: '127.0.0.1:70000' }, 'target');
    await bad({ target: 'a b:80' }, 'target');
    await bad({ provider: 'command', target: '' }, 'url');
    await bad({ provider: 'command', url: 'ftp://example.com/' }, 'url');
    await bad({ provider: 'command', url: 'https://pr-4.example.com/', aliasUrl: 'nope' }, 'alias_url');
    expect((await code(h.service.recordPreview({ ...req, runId: randomUUID() }))).code).toBe(Code.NotFound);
    expect((await code(h.service.recordPreview({ ...req, runId: 'not-a-run' }))).code).toBe(Code.NotFound);

    // Live twice: the first live time stays; the second call's target is taken.
    const first = await live(r.id, t);
    const t2 = await target('four again');
    const again = await live(r.id, t2);
    expect(again.liveTime).toEqual(first.liveTime);
    expect(await who(runHost(r.id))).toBe('four again');
    // Stopped twice: the first reason and time stay; a live report after it changes nothing.
    const s1 = await stop(r.id, 'worker restarted');
    const s2 = await stop(r.id, 'expired');
    expect(s2).toMatchObject({ state: 'stopped', stopReason: 'worker restarted', stopTime: s1.stopTime });
    expect(await live(r.id, t2)).toMatchObject({ state: 'stopped', stopReason: 'worker restarted' });
    expect((await call(runHost(r.id))).status).toBe(404);
    // A stop with no live report before it (the worker's fallback) is recorded as such.
    const never = await run('WEB-4b');
    const unseen = await stop(never.id, 'its worker did not stop it');
    expect(unseen).toMatchObject({ state: 'stopped', provider: 'local', stopReason: 'its worker did not stop it' });
    expect(unseen.liveTime).toBeUndefined();

    // The command provider keeps the worker's URLs; the router sends its run host there.
    const c = await run('WEB-5');
    const pc = (
      await h.service.recordPreview({
        runId: c.id,
        state: 'live',
        provider: 'command',
        url: 'https://pr-5.example.com/',
        aliasUrl: 'https://web-5.example.com/',
      })
    ).preview!;
    expect(pc).toMatchObject({ provider: 'command', url: 'https://pr-5.example.com/', aliasUrl: 'https://web-5.example.com/', aliased: true, state: 'live' });
    expect(await call(runHost(c.id))).toMatchObject({ status: 302, headers: { location: 'https://pr-5.example.com/' } });
  });

  it('ListPreviews filters by work item, run and state, keeps to page_size and to the caller’s tenant', async () => {
    const [x, y] = [await run('LIST-1'), await run('LIST-2')];
    const t = await target('list');
    await live(x.id, t);
    await live(y.id, t);
    await stop(y.id, 'expired');
    const ids = async (f: Record<string, unknown>) => (await h.acme.listPreviews(f)).previews.map((p) => p.runId);
    expect(await ids({ workItemId: 'LIST-1' })).toEqual([x.id]);
    expect(await ids({ runId: y.id })).toEqual([y.id]);
    const liveIds = await ids({ state: 'live' });
    expect(liveIds).toContain(x.id);
    expect(liveIds).not.toContain(y.id);
    expect(await ids({ state: 'stopped', workItemId: 'LIST-2' })).toEqual([y.id]);
    expect(await ids({ pageSize: 1 })).toHaveLength(1);
    // Newest first.
    const all = await ids({});
    expect(all.indexOf(y.id)).toBeLessThan(all.indexOf(x.id));
    expect(await ids({ workItemId: 'LIST-1', state: 'stopped' })).toEqual([]);
    expect((await h.globex.listPreviews({ runId: x.id })).previews).toEqual([]);
    expect((await h.globex.listPreviews({})).previews.every((p) => p.workItemId === 'GX-1')).toBe(true);
    expect((await code(h.acme.listPreviews({ state: 'gone' }))).rawMessage).toMatch(/^state: /);
    expect((await code(h.acme.listPreviews({ runId: 'x' }))).rawMessage).toMatch(/^run_id: /);
  });

  it("a preview going live signals the older live previews' workflows of its work item; one without a workflow is no error", async () => {
    // No such workflow: ignored.
    expect(await h.app.temporal.signalPreviewSuperseded(randomUUID(), randomUUID())).toBe(false);

    // The older preview's workflow, started on a queue no worker polls: the signal lands in its history.
    const [older, newer] = [await run('SIG-1'), await run('SIG-1')];
    const handle = await temporal.client.workflow.start(RUN_PREVIEW_WORKFLOW, {
      taskQueue: `${h.taskQueue}-previews`,
      workflowId: previewWorkflowId(older.id),
      args: [{ runId: older.id }],
    });
    try {
      const t = await target('sig');
      await live(older.id, t);
      await live(newer.id, t);
      const history = await handle.fetchHistory();
      const signals = (history.events ?? []).flatMap((e) => (e.workflowExecutionSignaledEventAttributes ? [e.workflowExecutionSignaledEventAttributes] : []));
      expect(signals.map((s) => [s.signalName, s.input?.payloads?.map((p) => defaultPayloadConverter.fromPayload(p))])).toEqual([
        [PREVIEW_SUPERSEDED_SIGNAL, [{ supersededBy: newer.id }]],
      ]);
    } finally {
      await handle.terminate('test done');
    }
  });
});
