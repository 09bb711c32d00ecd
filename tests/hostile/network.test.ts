import { hostname, networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Phase } from '@ameide/contracts';
import { createDatabase } from '@ameide/devstack';
import { sampleOrigin, startHarness, type Harness } from '../support/harness.js';
import { applyAndRun, item, output, transcript } from './support.js';

/**
 * A node script that tries to reach the stack's own services from inside a phase: plain TCP to
 * loopback and to every address of the host, and CONNECT (and plain HTTP) requests through the
 * phase's proxy, if it has one, to loopback by address, by name, and by names that resolve to it.
 * It prints `OPEN <how> <target>` for each success and `probe done` at the end; it always exits 0.
 */
function probeScript(cfg: { ports: number[]; hostIps: string[]; hostName: string; httpPorts: number[] }): string {
  const js = `
const net = require('net');
const cfg = ${JSON.stringify(cfg)};
const line = (s) => process.stdout.write(s + '\\n');
const tcp = (host, port) => new Promise((res) => {
  const s = net.connect({ host, port });
  const t = setTimeout(() => { s.destroy(); res('timeout'); }, 2500);
  s.once('connect', () => { clearTimeout(t); s.destroy(); res('open'); });
  s.once('error', (e) => { clearTimeout(t); res(e.code || e.message); });
});
const viaProxy = (proxy, request) => new Promise((res) => {
  const u = new URL(proxy);
  const s = net.connect({ host: u.hostname.replace(/^\\[|\\]$/g, ''), port: Number(u.port) || 80 });
  let buf = '';
  const t = setTimeout(() => { s.destroy(); res(buf.split('\\r\\n')[0] || 'timeout'); }, 4000);
  s.once('connect', () => s.write(request));
  s.on('data', (d) => { buf += d.toString('latin1'); if (buf.includes('\\r\\n')) { clearTimeout(t); s.destroy(); res(buf.split('\\r\\n')[0]); } });
  s.once('error', (e) => { clearTimeout(t); res(e.code || e.message); });
  s.once('close', () => { clearTimeout(t); res(buf.split('\\r\\n')[0] || 'closed'); });
});
(async () => {
  const jobs = [];
  const hosts = ['127.0.0.1', '::1', 'localhost', cfg.hostName, ...cfg.hostIps];
  for (const host of hosts) for (const port of cfg.ports) jobs.push(tcp(host, port).then((r) => line((r === 'open' ? 'OPEN' : 'closed') + ' tcp ' + host + ':' + port + ' (' + r + ')')));
  const env = process.env;
  const httpsProxy = env.HTTPS_PROXY || env.https_proxy || env.ALL_PROXY || env.all_proxy;
  const httpProxy = env.HTTP_PROXY || env.http_proxy || env.ALL_PROXY || env.all_proxy;
  line('proxy: https=' + (httpsProxy || '-') + ' http=' + (httpProxy || '-'));
  if (httpsProxy) {
    const names = ['127.0.0.1', 'localhost', 'LOCALHOST.', cfg.hostName, '[::1]', '127.1', '2130706433', '0x7f000001', '0177.0.0.1', '0.0.0.0',
      '[::ffff:127.0.0.1]', 'localtest.me', '127.0.0.1.nip.io', ...cfg.hostIps, ...cfg.hostIps.map((ip) => ip + '.nip.io')];
    for (const name of names) for (const port of cfg.ports) {
      const target = name + ':' + port;
      jobs.push(viaProxy(httpsProxy, 'CONNECT ' + target + ' HTTP/1.1\\r\\nHost: ' + target + '\\r\\n\\r\\n').then((r) =>
        line((/^HTTP\\/1\\.[01] 2\\d\\d/.test(r) ? 'OPEN' : 'refused') + ' connect ' + target + ' (' + r + ')')));
    }
  }
  if (httpProxy) {
    for (const name of ['127.0.0.1', 'localhost', cfg.hostName, ...cfg.hostIps]) for (const port of cfg.httpPorts) {
      const url = 'http://' + name + ':' + port + '/';
      jobs.push(viaProxy(httpProxy, 'GET ' + url + ' HTTP/1.1\\r\\nHost: ' + name + ':' + port + '\\r\\nConnection: close\\r\\n\\r\\n').then((r) =>
        line((/^HTTP\\/1\\.[01] [23]\\d\\d/.test(r) ? 'OPEN' : 'refused') + ' http-get ' + url + ' (' + r + ')')));
    }
  }
  await Promise.all(jobs);
  line('probe done: ' + jobs.length + ' attempts');
})();
`;
  return `node -e "$(printf %s ${Buffer.from(js).toString('base64')} | base64 -d)"`;
}

/**
 * The network of a phase: each phase has its own network namespace; online phases reach only
 * allow-listed hosts through a proxy that refuses loopback, private addresses and IP literals. So
 * no phase can reach the worker's own services (Postgres, Temporal, its UI, the API).
 */
describe('network isolation of every phase', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: true });
  });
  afterAll(() => h?.stop());

  it('no phase, online or offline, can reach Postgres, Temporal, the Temporal UI or the API, directly or through its proxy', async () => {
    const ports = {
      postgres: Number(new URL(inject('postgresUrl')).port),
      temporal: Number(inject('temporalAddress').split(':').at(-1)),
      temporalUi: Number(new URL(inject('temporalUiUrl')).port),
      api: Number(new URL(h.apiUrl).port),
    };
    const hostIps = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && !a.internal)
      .map((a) => a!.address);
    const probe = probeScript({ ports: Object.values(ports), hostIps, hostName: hostname(), httpPorts: [ports.temporalUi, ports.api] });
    const { run } = await applyAndRun(h.acme, sampleOrigin(h), 'probe', {
      installCommand: `${probe} && npm ci --no-audit --no-fund`,
      agentCommand: `${probe} && node "$AGENT_SCRIPT"`,
      testCommand: `${probe} && npm test`,
      guardrails: { network: { install: true, agent: true, test: false } },
    });
    const open: string[] = [];
    for (const phase of ['install', 'agent', 'test'] as const) {
      const out = output(transcript(h, 'acme', run.id, phase));
      expect(out, `${phase} transcript`).toContain('probe done');
      open.push(
        ...out
          .split('\n')
          .filter((l) => l.startsWith('OPEN '))
          .map((l) => `${phase}: ${l}`),
      );
    }
    const installTail = run.phases.find((p) => p.phase === Phase.INSTALL)?.outputTail ?? '';
    open.push(
      ...installTail
        .split('\n')
        .filter((l) => l.startsWith('OPEN '))
        .map((l) => `install tail: ${l}`),
    );
    expect(open).toEqual([]);
  });

  it('the stack does not use the old fixed Postgres password, and a login with it fails', async () => {
    const url = new URL(inject('postgresUrl'));
    expect(inject('postgresUrl')).not.toContain(':ameide@');
    for (const user of new Set([url.username, 'ameide', 'postgres'])) {
      const guess = `postgres://${user}:ameide@${url.hostname}:${url.port}/postgres`;
      await expect(createDatabase(guess, `hostile_${Date.now()}`), `login as ${user} with password ameide`).rejects.toThrow();
    }
  });
});
