import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Egress proxy for online sandbox phases. The sandbox has only its own loopback (`--unshare-net`);
 * its forwarder (egress-forwarder.pl) relays 127.0.0.1:<port> to this proxy's UNIX socket, so this
 * is the one door to the network, and it opens only onto allowlisted registries on public addresses.
 */

/** Options of {@link startEgressProxy}. */
export interface EgressProxyOptions {
  /** The UNIX socket to listen on; its directory must exist. A stale socket there is replaced. */
  socketPath: string;
  /** `registry.npmjs.org` (exact) or `*.example.com` (any subdomain, not the bare domain); case-insensitive. */
  allowedHosts: readonly string[];
  /** Destination ports; default 80 and 443. */
  allowedPorts?: readonly number[];
  /**
   * Exact destinations admitted besides the allowlist, on their own port (a model endpoint such as
   * `api.openai.com:443` or `vllm.internal:8000`). Their addresses are checked like any other.
   */
  extraTargets?: ReadonlyArray<{ host: string; port: number }>;
  /** Receives every decision: the destination (`host:port`, or the request's form), and why it was refused or failed. */
  onDecision?: (d: EgressDecision) => void;
  /** Receives one line per request stating the decision (for the run's transcript). */
  log: (line: string) => void;
  /** Resolves a host name to all its addresses; default: the system resolver. */
  resolve?: (host: string) => Promise<string[]>;
  /** Whether a resolved address may be contacted; default {@link isPublicUnicast}. */
  addressAllowed?: (ip: string) => boolean;
  /** Requests (tunnels and forwarded HTTP) in flight at once; default 64. */
  maxConcurrent?: number;
  /** A tunnel or request with no traffic this long is closed; default 120 s. */
  idleTimeoutMs?: number;
  /** Budget for connecting upstream (per address); default 15 s. */
  connectTimeoutMs?: number;
}

/** One request the proxy decided on. */
export interface EgressDecision {
  destination: string;
  outcome: 'allowed' | 'refused' | 'failed';
  reason?: string;
}

/** Counters since start; `active` and `sockets` are current values. */
export interface EgressStats {
  allowed: number;
  refused: number;
  failed: number;
  active: number;
  sockets: number;
}

/** A running proxy. */
export interface EgressProxy {
  socketPath: string;
  /** Stops listening and destroys every client and upstream socket. */
  close(): Promise<void>;
  stats(): EgressStats;
}

/**
 * The environment that points a sandboxed command's HTTP clients at the forwarder on `port`. NO_PROXY
 * keeps the sandbox's own loopback (test servers a command starts) direct, since the proxy refuses it.
 */
export function egressProxyEnv(port: number): Record<string, string> {
  const url = `http://127.0.0.1:${port}`;
  const local = 'localhost,127.0.0.1,::1';
  return {
    HTTP_PROXY: url,
    HTTPS_PROXY: url,
    http_proxy: url,
    https_proxy: url,
    npm_config_proxy: url,
    npm_config_https_proxy: url,
    NO_PROXY: local,
    no_proxy: local,
    npm_config_noproxy: local,
  };
}

/**
 * True only for a public unicast address. Refuses loopback, unspecified, private, CGNAT,
 * link-local (cloud metadata), unique-local, multicast, broadcast, reserved/documentation/benchmark
 * ranges, IPv6 outside 2000::/3 and the transition forms that embed an IPv4 address (6to4, Teredo,
 * NAT64) whose target cannot be judged here. IPv4-mapped IPv6 is judged as the IPv4 address it maps.
 */
export function isPublicUnicast(ip: string): boolean {
  if (!ipaddr.isValid(ip)) return false;
  let addr = ipaddr.parse(ip);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  if (addr.kind() === 'ipv4') return (addr as ipaddr.IPv4).range() === 'unicast';
  const v6 = addr as ipaddr.IPv6;
  return v6.range() === 'unicast' && v6.match(GLOBAL_UNICAST_V6);
}

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/**
 * {@link isPublicUnicast}, plus addresses inside `cidrs`: for a deployment whose registry mirror sits
 * on an address the default refuses (a private network, or a documentation range some networks use
 * for an intercepting mirror). Narrow CIDRs only; a loopback CIDR would reopen the host's services.
 */
export function publicUnicastOr(cidrs: readonly string[]): (ip: string) => boolean {
  const ranges = cidrs.map((c) => ipaddr.parseCIDR(c));
  return (ip) => {
    if (isPublicUnicast(ip)) return true;
    if (!ipaddr.isValid(ip)) return false;
    const addr = ipaddr.process(ip);
    return ranges.some((r) => r[0].kind() === addr.kind() && addr.match(r));
  };
}

/**
 * Compiles allowlist patterns into a predicate. Throws on anything but a host name or `*.` followed
 * by one, and on IP literals, which the proxy refuses anyway: a bad entry should fail at start-up,
 * not silently allow nothing.
 */
export function hostMatcher(patterns: readonly string[]): (host: string) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const raw of patterns) {
    const p = raw.trim().toLowerCase().replace(/\.$/, '');
    const wildcard = p.startsWith('*.');
    const name = wildcard ? p.slice(2) : p;
    if (!isHostName(name) || isIpLiteral(name)) throw new Error(`egress allowlist: invalid host pattern ${JSON.stringify(raw)}`);
    if (wildcard) suffixes.push(`.${name}`);
    else exact.add(name);
  }
  return (host) => {
    const h = host.toLowerCase().replace(/\.$/, '');
    return exact.has(h) || suffixes.some((s) => h.length > s.length && h.endsWith(s));
  };
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/i;
function isHostName(s: string): boolean {
  const name = s.replace(/\.$/, '');
  return name.length > 0 && name.length <= 253 && name.split('.').every((l) => LABEL.test(l));
}
// ipaddr accepts shorthand IPv4 (127.1, 0x7f.1, 2130706433) that resolvers also accept, so those count as literals too.
function isIpLiteral(s: string): boolean {
  const bare = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  return net.isIP(bare) !== 0 || ipaddr.isValid(bare);
}

/** A proxy request's destination, or why it is malformed. */
type Target = { host: string; port: number } | { error: string };

function parseConnectTarget(authority: string): Target {
  const m = /^(\[[^\]]*\]|[^:[\]]+):(\d{1,5})$/.exec(authority);
  if (!m) return { error: 'malformed CONNECT target' };
  return { host: m[1]!.toLowerCase(), port: Number(m[2]) };
}

function parseAbsoluteTarget(url: URL): Target {
  if (url.protocol !== 'http:') return { error: 'only http:// absolute-form requests (use CONNECT for https)' };
  return { host: url.hostname, port: url.port ? Number(url.port) : 80 };
}

/** Headers meaningful only for one hop, plus those a proxy must consume. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect']);
function forwardableHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = String(headers.connection ?? '')
    .toLowerCase()
    .split(',')
    .map((s) => s.trim());
  const out: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || k.startsWith('proxy-') || named.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * Starts the proxy on `opts.socketPath` (mode 0666, so the sandbox user can connect). Speaks the
 * HTTP/1.1 proxy protocol: `CONNECT host:port` tunnels and absolute-form `http://` requests. Every
 * refusal is a 403 with the reason in the body and one log line; malformed input gets a 400.
 */
export async function startEgressProxy(opts: EgressProxyOptions): Promise<EgressProxy> {
  const hostAllowed = hostMatcher(opts.allowedHosts);
  const ports = new Set(opts.allowedPorts ?? [80, 443]);
  const resolve = opts.resolve ?? (async (host: string) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address));
  const addressAllowed = opts.addressAllowed ?? isPublicUnicast;
  const maxConcurrent = opts.maxConcurrent ?? 64;
  const idleMs = opts.idleTimeoutMs ?? 120_000;
  const connectMs = opts.connectTimeoutMs ?? 15_000;
  const counts = { allowed: 0, refused: 0, failed: 0, active: 0 };
  const extraTargets = new Set((opts.extraTargets ?? []).map((t) => `${t.host.toLowerCase().replace(/\.$/, '')}:${t.port}`));
  const sockets = new Set<Socket>();
  let stopping = false;
  const log = (line: string): void => {
    try {
      opts.log(line);
    } catch {
      // A failing transcript writer must not take the proxy (or the worker) down.
    }
  };
  /** Counts, logs and reports one decision; `what` is how the log names the request. */
  const decide = (outcome: EgressDecision['outcome'], what: string, destination: string, reason?: string): void => {
    counts[outcome]++;
    log(`egress ${outcome} ${what}${reason ? `: ${reason}` : ''}`);
    try {
      opts.onDecision?.({ destination, outcome, ...(reason ? { reason } : {}) });
    } catch {
      // A failing recorder must not take the proxy down either.
    }
  };
  const track = (s: Socket): void => {
    s.on('error', () => {});
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };

  /** Takes a concurrency slot (or refuses); the returned function gives it back, once however often it is called. */
  function occupySlot(): () => void {
    if (counts.active >= maxConcurrent) throw new Refusal(503, 'too many open connections');
    counts.active++;
    let held = true;
    return () => {
      if (held) counts.active--;
      held = false;
    };
  }

  /** Counts and logs a request that did not go through, and says how to answer it. */
  function settle(what: string, destination: string, e: unknown, fallback: string): Refusal {
    const r = e instanceof Refusal ? e : new Refusal(502, `${fallback} (${(e as NodeJS.ErrnoException)?.code ?? String((e as Error)?.message ?? e)})`);
    decide(r.status === 502 ? 'failed' : 'refused', what, destination, r.message);
    return r;
  }

  /** The checked addresses to connect to, or a Refusal. Resolving here, once, is what defeats DNS rebinding. */
  async function admit(target: { host: string; port: number }): Promise<string[]> {
    if (isIpLiteral(target.host)) throw new Refusal(403, 'IP literals are refused, registries are named');
    if (!extraTargets.has(`${target.host.replace(/\.$/, '')}:${target.port}`)) {
      if (!isHostName(target.host) || !hostAllowed(target.host)) throw new Refusal(403, 'not in the allowlist');
      if (!ports.has(target.port)) throw new Refusal(403, `port ${target.port} is not allowed`);
    }
    let addresses: string[];
    try {
      addresses = await resolve(target.host);
    } catch (e) {
      throw new Refusal(502, `cannot resolve (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (stopping) throw new Refusal(503, 'proxy is stopping');
    if (addresses.length === 0) throw new Refusal(502, 'cannot resolve (no addresses)');
    const bad = addresses.find((a) => net.isIP(canonical(a)) === 0 || !addressAllowed(a));
    if (bad !== undefined) throw new Refusal(403, `resolves to a non-public address ${bad}`);
    return addresses.map(canonical);
  }

  /** Tries the checked addresses in order; the first that answers carries the tunnel. */
  function connectUpstream(addresses: string[], port: number): Promise<Socket> {
    return new Promise((resolveConnect, reject) => {
      const attempt = (i: number, lastError: Error): void => {
        if (i >= addresses.length) return reject(lastError);
        const s = net.connect({ host: addresses[i], port });
        track(s);
        let failed: Error = new Error('connection closed');
        s.setTimeout(connectMs, () => s.destroy(new Error('connect timeout')));
        s.once('error', (e) => (failed = e));
        const next = (): void => attempt(i + 1, failed);
        s.once('close', next);
        s.once('connect', () => {
          s.setTimeout(0);
          s.off('close', next);
          resolveConnect(s);
        });
      };
      attempt(0, new Error('no address'));
    });
  }

  // Host and port only: a URL's path and query can carry tokens, and these lines go into transcripts.
  const label = (method: string, t: Target): string => ('host' in t ? `${method} ${t.host}:${t.port}` : method);
  const destinationOf = (t: Target, fallback: string): string => ('host' in t ? `${t.host}:${t.port}` : fallback);

  async function onConnect(req: IncomingMessage, client: Socket, head: Buffer): Promise<void> {
    const target = parseConnectTarget(req.url ?? '');
    const what = label('CONNECT', target);
    const refuse = (status: number, reason: string): void => {
      const body = `egress refused: ${reason}\n`;
      client.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    };
    if ('error' in target) {
      decide('refused', what, destinationOf(target, 'malformed CONNECT'), target.error);
      return refuse(400, target.error);
    }
    let upstream: Socket;
    let release = (): void => {};
    try {
      release = occupySlot();
      const addresses = await admit(target);
      upstream = await connectUpstream(addresses, target.port);
    } catch (e) {
      release();
      const r = settle(what, destinationOf(target, what), e, 'connect failed');
      return refuse(r.status, r.message);
    }
    if (client.destroyed) {
      release();
      upstream.destroy();
      return;
    }
    decide('allowed', what, destinationOf(target, what));
    const abort = (): void => {
      client.destroy();
      upstream.destroy();
    };
    let open = 2;
    for (const [s, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      s.setTimeout(idleMs, abort);
      s.once('error', abort);
      // end(), not destroy(): the other side may still be flushing the last bytes of a response.
      s.once('close', () => {
        other.end();
        if (--open === 0) release();
      });
    }
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    let url: URL | undefined;
    try {
      url = new URL(req.url ?? '');
    } catch {
      // Origin-form (`GET /path`) lands here: this server is only a proxy.
    }
    const target: Target = url ? parseAbsoluteTarget(url) : { error: 'not an absolute-form proxy request' };
    const what = label(method, target);
    const refuse = (status: number, reason: string): void => {
      if (res.headersSent) return void res.destroy();
      res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(`egress refused: ${reason}\n`);
    };
    if ('error' in target || !url) {
      const reason = 'error' in target ? target.error : 'malformed';
      decide('refused', what, destinationOf(target, `malformed ${method}`), reason);
      return refuse(400, reason);
    }
    let release = (): void => {};
    let addresses: string[];
    try {
      release = occupySlot();
      res.once('close', release);
      addresses = await admit(target);
    } catch (e) {
      release();
      const r = settle(what, destinationOf(target, what), e, 'check failed');
      return refuse(r.status, r.message);
    }
    // Only the first checked address: retrying a request whose body is already streaming is not safe.
    const upstreamReq = http.request({
      host: addresses[0],
      port: target.port,
      method,
      path: `${url.pathname}${url.search}`,
      headers: { ...forwardableHeaders(req.headers), host: url.host },
      setHost: false,
      agent: false,
      timeout: idleMs,
    });
    let logged = false;
    upstreamReq.on('socket', track);
    upstreamReq.on('timeout', () => upstreamReq.destroy(new Error('idle timeout')));
    upstreamReq.on('error', (e) => {
      if (logged) return void res.destroy();
      logged = true;
      const reason = `upstream failed (${(e as NodeJS.ErrnoException).code ?? e.message})`;
      decide('failed', what, destinationOf(target, what), reason);
      if (res.headersSent) return void res.destroy();
      res.writeHead(502, { 'content-type': 'text/plain', connection: 'close' }).end(`egress: ${reason}\n`);
    });
    upstreamReq.on('response', (upstreamRes) => {
      logged = true;
      decide('allowed', what, destinationOf(target, what));
      upstreamRes.on('error', () => res.destroy());
      res.writeHead(upstreamRes.statusCode ?? 502, forwardableHeaders(upstreamRes.headers));
      upstreamRes.pipe(res);
    });
    res.once('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.on('error', () => upstreamReq.destroy());
    req.pipe(upstreamReq);
  }

  const server = http.createServer({ requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 5_000 });
  server.timeout = idleMs;
  server.on('connection', track);
  server.on('connect', (req, socket: Socket, head: Buffer) => void onConnect(req, socket, head).catch(() => socket.destroy()));
  server.on('request', (req, res) => void onRequest(req, res).catch(() => res.destroy()));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code?.startsWith('HPE_')) {
      decide('refused', 'malformed request', 'malformed request', err.code);
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad request\n');
    }
    socket.destroy();
  });
  server.on('error', () => {});

  removeStaleSocket(opts.socketPath);
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  chmodSync(opts.socketPath, 0o666);

  let closing: Promise<void> | undefined;
  return {
    socketPath: opts.socketPath,
    stats: () => ({ ...counts, sockets: sockets.size }),
    close: () =>
      (closing ??= (async () => {
        stopping = true;
        const stopped = new Promise<void>((done) => server.close(() => done()));
        // Resolving only once every socket has really closed is what lets callers (and tests) rely on "nothing left open".
        const gone = [...sockets].map((s) => new Promise<void>((done) => (s.closed ? done() : s.once('close', () => done()))));
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        await Promise.all([stopped, ...gone]);
      })()),
  };
}

/** The address as connect() should see it: canonical text, IPv4-mapped IPv6 as plain IPv4. */
function canonical(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const a = ipaddr.parse(ip);
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) return (a as ipaddr.IPv6).toIPv4Address().toString();
  return a.toString();
}

// A socket left behind by a crashed worker would make listen() fail; anything that is not a socket is left alone.
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Absent: nothing to remove.
  }
}
