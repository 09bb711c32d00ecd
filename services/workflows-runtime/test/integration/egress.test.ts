import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  egressProxyEnv,
  hostMatcher,
  isPublicUnicast,
  publicUnicastOr,
  startEgressProxy,
  type EgressProxy,
  type EgressProxyOptions,
} from '../../src/guardrails/egress.js';

/** Real UNIX and TCP sockets and real child processes; only DNS and the address policy are injected where the machine has no internet. */
const dir = mkdtempSync(join(tmpdir(), 'egress-'));
const forwarder = fileURLToPath(new URL('../../src/guardrails/egress-forwarder.pl', import.meta.url));
let socketSeq = 0;

let echo: net.Server;
let echoPort = 0;
let echoConnections = 0;
let web: http.Server;
let webPort = 0;

beforeAll(async () => {
  echo = net.createServer((s) => {
    echoConnections++;
    s.on('error', () => {});
    s.pipe(s);
  });
  web = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('connection', 'close');
    res.end(JSON.stringify({ url: req.url, method: req.method, headers: req.headers }));
  });
  echoPort = await listen(echo);
  webPort = await listen(web);
});

afterAll(async () => {
  await new Promise((r) => echo.close(r));
  await new Promise((r) => web.close(r));
});

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

/** A proxy whose DNS answers `name → 127.0.0.1` and whose address policy admits it: the local servers stand in for a registry. */
async function proxy(over: Partial<EgressProxyOptions> = {}): Promise<{ p: EgressProxy; logs: string[] }> {
  const logs: string[] = [];
  const p = await startEgressProxy({
    socketPath: join(dir, `proxy-${++socketSeq}.sock`),
    allowedHosts: ['registry.test', '*.mirror.test'],
    allowedPorts: [echoPort, webPort, 443],
    log: (l) => logs.push(l),
    resolve: async () => ['127.0.0.1'],
    addressAllowed: () => true,
    ...over,
  });
  return { p, logs };
}

/** Sends raw bytes to the proxy and reads the response head (and, when the proxy closes, the body). */
function raw(socketPath: string, data: string | Buffer): Promise<{ status: number; text: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      const text = buf.toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, socket });
    };
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      // A tunnel stays open after its 200, so the head is all there is to wait for.
      if (/^HTTP\/1\.1 200 /.test(buf.toString('latin1')) && buf.includes('\r\n\r\n')) finish();
    });
    socket.on('close', finish);
    socket.on('error', (e) => (done ? undefined : reject(e)));
    socket.write(data);
  });
}

const connectReq = (target: string): string => `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`;

function roundTrip(socket: Socket, message: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    socket.on('data', (d) => {
      got += d.toString();
      if (got.length >= message.length) resolve(got);
    });
    socket.write(message);
  });
}

async function until(cond: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

describe('egress proxy: CONNECT', () => {
  it('tunnels an allowlisted name byte for byte to the address it checked', async () => {
    const { p, logs } = await proxy();
    expect(statSync(p.socketPath).mode & 0o777).toBe(0o666);
    const r = await raw(p.socketPath, connectReq(`REGISTRY.test:${echoPort}`));
    expect(r.text).toMatch(/^HTTP\/1\.1 200 Connection Established\r\n\r\n/);
    expect(await roundTrip(r.socket, 'ping through the tunnel')).toBe('ping through the tunnel');
    expect(logs).toEqual([`egress allowed CONNECT registry.test:${echoPort}`]);
    expect(p.stats()).toMatchObject({ allowed: 1, active: 1 });
    r.socket.destroy();
    await p.close();
    expect(existsSync(p.socketPath)).toBe(false);
  });

  it('refuses, with 403, a reason and one log line each', async () => {
    const names: Record<string, string[]> = {
      'loop.mirror.test': ['127.0.0.1'],
      'private.mirror.test': ['10.0.0.1'],
      'metadata.mirror.test': ['169.254.169.254'],
      'mixed.mirror.test': ['104.16.0.1', '192.168.1.5'],
      'mapped.mirror.test': ['::ffff:127.0.0.1'],
    };
    const { p: q, logs: qlogs } = await proxy({ resolve: async (h) => names[h] ?? [], addressAllowed: undefined });
    const before = echoConnections;
    const cases: [string, RegExp][] = [
      [`elsewhere.test:${echoPort}`, /not in the allowlist/],
      [`mirror.test:${echoPort}`, /not in the allowlist/],
      [`registry.test:22`, /port 22 is not allowed/],
      [`127.0.0.1:${echoPort}`, /IP literals are refused/],
      [`[::1]:${echoPort}`, /IP literals are refused/],
      [`2130706433:${echoPort}`, /IP literals are refused/],
      [`loop.mirror.test:${echoPort}`, /non-public address 127\.0\.0\.1/],
      [`private.mirror.test:${echoPort}`, /non-public address 10\.0\.0\.1/],
      [`metadata.mirror.test:${echoPort}`, /non-public address 169\.254\.169\.254/],
      [`mixed.mirror.test:${echoPort}`, /non-public address 192\.168\.1\.5/],
      [`mapped.mirror.test:${echoPort}`, /non-public address ::ffff:127\.0\.0\.1/],
    ];
    for (const [target, reason] of cases) {
      const r = await raw(q.socketPath, connectReq(target));
      expect(r.status, target).toBe(403);
      expect(r.text, target).toMatch(reason);
      expect(qlogs.at(-1), target).toMatch(new RegExp(`^egress refused CONNECT \\S+: .*${reason.source}`));
    }
    expect(qlogs).toHaveLength(cases.length);
    expect(qlogs[0]).toBe(`egress refused CONNECT elsewhere.test:${echoPort}: not in the allowlist`);
    expect(echoConnections).toBe(before);
    expect(q.stats()).toMatchObject({ allowed: 0, refused: cases.length, active: 0 });
    await q.close();
  });

  it('answers 502 when the name does not resolve or nothing listens', async () => {
    const { p, logs } = await proxy({
      resolve: async (h) => (h === 'registry.test' ? ['127.0.0.1'] : Promise.reject(Object.assign(new Error('nx'), { code: 'ENOTFOUND' }))),
    });
    const closedPort = await freePort();
    const { p: q } = await proxy({ allowedPorts: [closedPort] });
    expect((await raw(p.socketPath, connectReq(`a.mirror.test:${echoPort}`))).status).toBe(502);
    expect(logs).toEqual([`egress failed CONNECT a.mirror.test:${echoPort}: cannot resolve (ENOTFOUND)`]);
    const r = await raw(q.socketPath, connectReq(`registry.test:${closedPort}`));
    expect(r.status).toBe(502);
    expect(r.text).toMatch(/ECONNREFUSED/);
    await Promise.all([p.close(), q.close()]);
  });

  it('bounds concurrent tunnels and closes idle ones', async () => {
    const { p, logs } = await proxy({ maxConcurrent: 2, idleTimeoutMs: 300 });
    const a = await raw(p.socketPath, connectReq(`registry.test:${echoPort}`));
    const b = await raw(p.socketPath, connectReq(`registry.test:${echoPort}`));
    const c = await raw(p.socketPath, connectReq(`registry.test:${echoPort}`));
    expect([a.status, b.status, c.status]).toEqual([200, 200, 503]);
    expect(logs[2]).toMatch(/refused .*too many open connections/);
    await Promise.all([closed(a.socket), closed(b.socket)]);
    // The proxy's own close callbacks may run a tick after the client saw the connection end.
    await until(() => p.stats().active === 0);
    expect((await raw(p.socketPath, connectReq(`registry.test:${echoPort}`))).status).toBe(200);
    await p.close();
  });

  it('close() tears down open tunnels', async () => {
    const { p } = await proxy();
    const r = await raw(p.socketPath, connectReq(`registry.test:${echoPort}`));
    expect(r.status).toBe(200);
    await p.close();
    expect(p.stats()).toMatchObject({ sockets: 0, active: 0 });
    await closed(r.socket);
  });
});

describe('egress proxy: plain HTTP', () => {
  function get(socketPath: string, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath, path: url, headers, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('forwards an absolute-form GET to the allowed server, without proxy or hop-by-hop headers', async () => {
    const { p, logs } = await proxy();
    const r = await get(p.socketPath, `http://registry.test:${webPort}/pkg/-/a.tgz?x=1`, {
      'proxy-authorization': 'Basic c2VjcmV0',
      'proxy-connection': 'keep-alive',
      connection: 'keep-alive, x-hop',
      'x-hop': 'drop me',
      'x-keep': 'kept',
    });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as { url: string; method: string; headers: Record<string, string> };
    expect(seen.url).toBe('/pkg/-/a.tgz?x=1');
    expect(seen.method).toBe('GET');
    expect(seen.headers.host).toBe(`registry.test:${webPort}`);
    expect(seen.headers['x-keep']).toBe('kept');
    for (const h of ['proxy-authorization', 'proxy-connection', 'x-hop']) expect(seen.headers[h], h).toBeUndefined();
    expect(logs).toEqual([`egress allowed GET registry.test:${webPort}`]);
    await p.close();
  });

  it('refuses disallowed and non-proxy requests', async () => {
    const { p, logs } = await proxy({ addressAllowed: undefined });
    expect((await get(p.socketPath, `http://registry.test:${webPort}/`)).status).toBe(403);
    expect(logs.at(-1)).toBe(`egress refused GET registry.test:${webPort}: resolves to a non-public address 127.0.0.1`);
    const literal = await get(p.socketPath, `http://[::1]:${webPort}/`);
    expect(literal).toMatchObject({ status: 403 });
    expect(literal.body).toMatch(/IP literals are refused/);
    expect((await get(p.socketPath, `http://0x7f.1:${webPort}/`)).status).toBe(403);
    expect((await get(p.socketPath, '/origin-form')).status).toBe(400);
    expect((await get(p.socketPath, `https://registry.test:${webPort}/`)).status).toBe(400);
    expect(logs).toHaveLength(5);
    await p.close();
  });
});

describe('address policy', () => {
  const refused = [
    ['loopback', ['127.0.0.1', '127.255.255.254', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1']],
    ['unspecified', ['0.0.0.0', '0.1.2.3', '::', '::ffff:0.0.0.0']],
    ['private', ['10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255', '192.168.0.1', '::ffff:10.0.0.1', '::ffff:172.16.5.4', '::ffff:192.168.1.1']],
    ['CGNAT', ['100.64.0.1', '100.127.255.254', '::ffff:100.64.0.1']],
    ['link-local', ['169.254.169.254', '169.254.0.1', 'fe80::1', 'febf::ffff', 'fe80::1%eth0', '::ffff:169.254.169.254']],
    ['unique-local', ['fc00::1', 'fd00:ec2::254', 'fdff:ffff::1']],
    ['multicast', ['224.0.0.1', '239.255.255.250', 'ff02::1', 'ff0e::1', '::ffff:224.0.0.1']],
    ['broadcast', ['255.255.255.255', '::ffff:255.255.255.255']],
    [
      'reserved / documentation / benchmarking',
      ['192.0.0.8', '192.0.2.1', '198.51.100.7', '203.0.113.9', '198.18.0.1', '240.0.0.1', '2001:db8::1', '::ffff:192.0.2.1', '3fff::1'],
    ],
    ['embedding IPv4 or outside 2000::/3', ['::127.0.0.1', '64:ff9b::a00:1', '2002:7f00:1::1', '2001::1', '100::1', '5f00::1', '::ffff:0:7f00:1']],
    ['not an address', ['', 'localhost', '1.2.3.4.5', '::ffff:999.0.0.1']],
  ] as const;
  for (const [range, ips] of refused) {
    it(`refuses ${range}`, () => {
      for (const ip of ips) expect(isPublicUnicast(ip), ip).toBe(false);
    });
  }

  it('accepts public unicast', () => {
    for (const ip of ['104.16.0.1', '8.8.8.8', '172.32.0.1', '100.128.0.1', '11.0.0.1', '2606:4700::1', '2a00:1450:4001::200e', '::ffff:104.16.0.1']) {
      expect(isPublicUnicast(ip), ip).toBe(true);
    }
  });

  it('admits extra CIDRs only when asked', () => {
    const allowed = publicUnicastOr(['203.0.113.7/32', '10.20.0.0/16']);
    for (const ip of ['203.0.113.7', '10.20.3.4', '::ffff:10.20.3.4', '104.16.0.1']) expect(allowed(ip), ip).toBe(true);
    for (const ip of ['203.0.113.81', '10.21.0.1', '127.0.0.1', '::1', 'nonsense']) expect(allowed(ip), ip).toBe(false);
  });
});

describe('host allowlist', () => {
  it('matches exact names and subdomain wildcards, case-insensitively, never the bare domain', () => {
    const m = hostMatcher(['registry.npmjs.org', '*.Example.com']);
    for (const h of ['a.example.com', 'a.b.example.com', 'A.EXAMPLE.COM', 'registry.npmjs.org', 'Registry.NPMJS.org.']) expect(m(h), h).toBe(true);
    for (const h of ['example.com', 'badexample.com', 'a.badexample.com', 'example.com.evil.test', 'npmjs.org', 'x.registry.npmjs.org', '.example.com'])
      expect(m(h), h).toBe(false);
  });

  it('rejects patterns it cannot honour', () => {
    for (const bad of ['*', '*.', 'a.*.com', '*example.com', 'reg*.npmjs.org', '10.0.0.1', '[::1]', 'exa mple.com', '']) {
      expect(() => hostMatcher([bad]), bad).toThrow(/invalid host pattern/);
    }
  });
});

describe('egress-forwarder.pl', () => {
  function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn('perl', [forwarder, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  const tunnelScript = (port: number, target: string): string => `
    const s = require('node:net').connect(${port}, '127.0.0.1');
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      if (buf.includes('\\r\\n\\r\\n') && !buf.includes('pong')) { if (!buf.startsWith('HTTP/1.1 200')) { console.log('refused', buf); process.exit(9); } s.write('pong'); }
      if (buf.endsWith('pong')) { console.log('reached:' + buf.split('\\r\\n\\r\\n')[1]); process.exit(3); }
    });
    s.write('CONNECT ${target} HTTP/1.1\\r\\nHost: ${target}\\r\\n\\r\\n');`;

  it('relays a command\u2019s CONNECT to the proxy and exits with the command\u2019s code', async () => {
    const { p, logs } = await proxy();
    const port = await freePort();
    const r = await run([String(port), p.socketPath, '--', process.execPath, '-e', tunnelScript(port, `registry.test:${echoPort}`)]);
    expect(r.stdout.trim()).toBe('reached:pong');
    expect(r.code).toBe(3);
    expect(logs).toEqual([`egress allowed CONNECT registry.test:${echoPort}`]);
    const refused = await run([String(port), p.socketPath, '--', process.execPath, '-e', tunnelScript(port, 'other.test:443')]);
    expect(refused.code).toBe(9);
    expect(refused.stdout).toMatch(/403 Forbidden/);
    await p.close();
  });

  it('propagates exit codes and signals', async () => {
    const sock = join(dir, 'absent.sock');
    expect((await run([String(await freePort()), sock, '--', 'sh', '-c', 'exit 7'])).code).toBe(7);
    expect((await run([String(await freePort()), sock, '--', 'sh', '-c', 'exit 0'])).code).toBe(0);
    expect((await run([String(await freePort()), sock, '--', 'sh', '-c', 'kill -TERM $$'])).code).toBe(143);
    expect((await run([String(await freePort()), sock, '--', 'no-such-command-xyz'])).code).toBe(127);
    expect((await run(['nope', sock, '--', 'true'])).code).toBe(125);
  });

  it('forwards SIGTERM to the command', async () => {
    const port = await freePort();
    const child = spawn('perl', [forwarder, String(port), join(dir, 'absent.sock'), '--', 'sh', '-c', 'echo up; exec sleep 30'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((r) => child.stdout.once('data', r));
    const started = Date.now();
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('exit', r));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(code).toBe(143);
  });

  it('closes the client connection when the proxy socket is missing', async () => {
    const port = await freePort();
    const script = `const s = require('node:net').connect(${port}, '127.0.0.1'); let n = 0; s.on('data', (d) => (n += d.length)); s.on('close', () => { console.log('closed:' + n); process.exit(0); }); s.write('CONNECT a:1 HTTP/1.1\\r\\n\\r\\n');`;
    const r = await run([String(port), join(dir, 'absent.sock'), '--', process.execPath, '-e', script]);
    expect(r.stdout.trim()).toBe('closed:0');
    expect(r.code).toBe(0);
  });

  it('relays inbound connections (--inbound) from its UNIX socket to the command\u2019s server, and exits with it', async () => {
    const port = await freePort();
    const sock = join(dir, `inbound-${++socketSeq}.sock`);
    const server = `require('node:http').createServer((q, s) => s.end('served ' + q.url)).listen(${port}, '127.0.0.1', () => console.log('up'))`;
    const child = spawn('perl', [forwarder, '--inbound', String(port), sock, '--', process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => child.stdout.once('data', r));
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get({ socketPath: sock, path: '/index.html', agent: false }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d)).on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    expect(body).toBe('served /index.html');
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    child.kill('SIGTERM');
    expect(await new Promise((r) => child.on('exit', r))).toBe(143);
  });

  it('gives commands the proxy environment', () => {
    expect(egressProxyEnv(3128)).toMatchObject({
      HTTP_PROXY: 'http://127.0.0.1:3128',
      HTTPS_PROXY: 'http://127.0.0.1:3128',
      http_proxy: 'http://127.0.0.1:3128',
      https_proxy: 'http://127.0.0.1:3128',
      npm_config_proxy: 'http://127.0.0.1:3128',
      npm_config_https_proxy: 'http://127.0.0.1:3128',
      NO_PROXY: 'localhost,127.0.0.1,::1',
    });
  });
});

describe('robustness', () => {
  const handles = (): number => process.getActiveResourcesInfo().filter((t) => /Pipe|TCP/.test(t)).length;

  it('survives 50 garbage requests and leaves no open handles after close()', async () => {
    const baseline = handles();
    const { p, logs } = await proxy();
    const garbage: (string | Buffer)[] = [
      'hello\r\n\r\n',
      'GET\r\n\r\n',
      'CONNECT\r\n\r\n',
      'CONNECT nohost HTTP/1.1\r\n\r\n',
      `CONNECT registry.test:99999 HTTP/1.1\r\n\r\n`,
      'CONNECT :443 HTTP/1.1\r\n\r\n',
      'CONNECT [::1 HTTP/1.1\r\n\r\n',
      'CONNECT reg%00istry.test:443 HTTP/1.1\r\n\r\n',
      'GET http:// HTTP/1.1\r\n\r\n',
      'GET http://[zz]/ HTTP/1.1\r\n\r\n',
      'GET /x HTTP/1.1\r\nHost: a\r\n\r\n',
      'GET ftp://registry.test/ HTTP/1.1\r\n\r\n',
      `GET http://registry.test:${webPort}/ HTTP/1.1\r\nContent-Length: abc\r\n\r\n`,
      `GET http://registry.test:${webPort}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n`,
      `GET http://registry.test:${webPort}/ HTTP/1.1\r\n${'X-Big: ' + 'a'.repeat(70_000)}\r\n\r\n`,
      'GET http://registry.test/ HTTP/9.9\r\n\r\n',
      '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
      Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10]),
      'CONNECT registry.test:443 HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
      'GET http://registry.test/ HTTP/1.1\r\nHost: \x00\r\n\r\n',
    ];
    const attempts = Array.from({ length: 50 }, (_, i) => garbage[i % garbage.length]!);
    const results = await Promise.all(
      attempts.map(async (g) => {
        const r = await raw(p.socketPath, g).catch(() => undefined);
        r?.socket.destroy();
        return r?.status ?? 0;
      }),
    );
    expect(
      results.every((s) => [0, 400, 403, 413, 431, 502, 505].includes(s)),
      results.join(','),
    ).toBe(true);
    expect(results.filter((s) => s === 400).length).toBeGreaterThan(25);
    expect(logs.length).toBeGreaterThan(25);
    // Half-open clients: headers never finished, then the worker stops.
    const hanging = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          new Promise<Socket>((resolve) => {
            const s = net.connect(p.socketPath, () => resolve(s));
            s.on('error', () => {});
            s.write('CONNECT registry.test:443 HTTP/1.1\r\n');
          }),
      ),
    );
    const ok = await raw(p.socketPath, connectReq(`registry.test:${echoPort}`));
    expect(ok.status).toBe(200);
    await p.close();
    await Promise.all([...hanging, ok.socket].map(closed));
    expect(p.stats()).toMatchObject({ sockets: 0, active: 0 });
    // A socket of an earlier test may still be closing when the baseline is taken: none may be added.
    await vi.waitFor(() => expect(handles()).toBeLessThanOrEqual(baseline), { timeout: 2000, interval: 50 });
  });
});
