import http from 'node:http';
import type net from 'node:net';
import type { PreviewRow } from '@ameide/db';
import type { PreviewHosts } from './hosts.js';
import type { PreviewRouteTable, Route } from './table.js';

/** A listening preview router. */
export interface PreviewRouter {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** How long connecting to a preview's server may take before the router answers 502. */
const CONNECT_TIMEOUT_MS = 10_000;

/** Headers of one connection, not of the message (RFC 9110 7.6.1); `transfer-encoding` is handled per direction. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade']);

/** A Host header as it may appear in an answer: printable, bounded. */
function shown(host: string | undefined): string {
  return (host ?? '(no Host header)').replace(/[^\x21-\x7e]/g, '?').slice(0, 300);
}

function plainText(status: number, text: string): { headers: http.OutgoingHttpHeaders; body: string } {
  const body = text + '\n';
  return {
    headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) },
    body,
  };
}

function answer(res: http.ServerResponse, status: number, text: string): void {
  const a = plainText(status, text);
  res.writeHead(status, a.headers);
  res.end(a.body);
}

/** The same answer on a raw socket (an upgrade request), and the connection closed. */
function answerRaw(socket: net.Socket, status: number, text: string): void {
  const a = plainText(status, text);
  const head = [
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`,
    ...Object.entries(a.headers).map(([k, v]) => `${k}: ${String(v)}`),
    'connection: close',
  ];
  socket.end(head.join('\r\n') + '\r\n\r\n' + a.body);
}

/** Why a host has no live preview, in one line. */
function notLive(host: string, route: Exclude<Route, { kind: 'live' }>): string {
  if (route.kind === 'none') return `no preview at ${host}`;
  const p = route.preview;
  return `no preview at ${host}: preview of run ${p.runId} stopped${p.stopReason ? `: ${p.stopReason.replace(/[\r\n]+/g, ' ')}` : ''}`;
}

/** `host:port` (or `[v6]:port`) of a local preview's server. */
function splitTarget(target: string): { host: string; port: number } {
  const i = target.lastIndexOf(':');
  return { host: target.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(target.slice(i + 1)) };
}

/** The request's headers for the preview's server: hop-by-hop ones dropped (but the upgrade's kept), X-Forwarded-* added. */
function forwardHeaders(req: http.IncomingMessage, upgrade: boolean): http.OutgoingHttpHeaders {
  const named = new Set(
    String(req.headers.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || ((HOP_BY_HOP.has(k) || named.has(k)) && !upgrade)) continue;
    out[k] = v;
  }
  const client = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${String(prior)}, ${client}` : client;
  out['x-forwarded-host'] = req.headers.host ?? '';
  out['x-forwarded-proto'] = 'http';
  return out;
}

/** The preview server's answer headers for the client: hop-by-hop ones and the transfer coding dropped (Node frames the body again). */
function answerHeaders(up: http.IncomingMessage): http.OutgoingHttpHeaders {
  const named = new Set(
    String(up.headers.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(up.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k) || k === 'transfer-encoding') continue;
    out[k] = v;
  }
  return out;
}

/**
 * The preview router: a plain HTTP server that sends each request to the preview its Host names,
 * `run-<id8>.<tenant>.<domain>` (a run's own preview) or `<work item>.<tenant>.<domain>` (the work
 * item's newest live preview). Requests and answers are streamed both ways (method, path, headers,
 * body; X-Forwarded-Host/Proto/For added), and so are upgraded connections (WebSocket).
 *
 * It answers itself, in one line of plain text: 404 for a host that is not a preview host or has no
 * live preview (saying why, when its preview stopped), 502 when the preview's server does not answer,
 * 503 when the routes cannot be read. A live preview of the `command` provider (deployed elsewhere)
 * is a redirect to its URL. There is no authentication: preview URLs are for reviewers.
 */
export async function startPreviewRouter(opts: {
  host: string;
  port: number;
  hosts: PreviewHosts;
  routes: PreviewRouteTable;
  /** The request's headers must arrive within this (AMEIDE_API_HEADERS_TIMEOUT_SECONDS). */
  headersTimeoutMs: number;
}): Promise<PreviewRouter> {
  const agent = new http.Agent({ keepAlive: true });

  /** The live preview a request's Host names, or undefined once it has been answered. */
  async function route(req: http.IncomingMessage, refuse: (status: number, text: string) => void): Promise<PreviewRow | undefined> {
    const host = shown(req.headers.host);
    const parsed = opts.hosts.parse(req.headers.host);
    if (!parsed) return void refuse(404, `${host} is not a preview host (<run-id8 or work item>.<tenant>.${opts.hosts.domain})`);
    let r: Route;
    try {
      r = await opts.routes.resolve(parsed);
    } catch {
      return void refuse(503, `the preview routes cannot be read right now (the database did not answer); retry shortly`);
    }
    if (r.kind !== 'live') return void refuse(404, notLive(host, r));
    return r.preview;
  }

  const notAnswering = (p: PreviewRow, req: http.IncomingMessage, err: NodeJS.ErrnoException) =>
    `preview of run ${p.runId} at ${shown(req.headers.host)} is not answering (${err.code ?? err.message})`;

  /** Starts the request to the preview's server, failing it after CONNECT_TIMEOUT_MS without a connection. */
  function upstream(p: PreviewRow, req: http.IncomingMessage, upgrade: boolean): http.ClientRequest {
    const t = splitTarget(p.target);
    const up = http.request({
      host: t.host,
      port: t.port,
      method: req.method,
      path: req.url,
      headers: forwardHeaders(req, upgrade),
      setHost: false,
      agent: upgrade ? false : agent,
    });
    up.on('socket', (s) => {
      if (!s.connecting) return;
      const timer = setTimeout(() => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
      s.once('connect', () => clearTimeout(timer));
      s.once('close', () => clearTimeout(timer));
    });
    return up;
  }

  async function onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const p = await route(req, (status, text) => answer(res, status, text));
    if (!p) return;
    if (p.provider !== 'local' || !p.target) {
      if (!p.url) return answer(res, 404, `no preview at ${shown(req.headers.host)}: preview of run ${p.runId} has no address`);
      res.writeHead(302, { location: p.url, 'content-length': 0, 'cache-control': 'no-store' });
      return void res.end();
    }
    const up = upstream(p, req, false);
    up.on('response', (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, answerHeaders(ur));
      // Streamed answers (server-sent events, long polls) start at once.
      res.flushHeaders();
      ur.pipe(res);
      ur.on('close', () => {
        if (!ur.complete) res.destroy();
      });
    });
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (!res.headersSent) answer(res, 502, notAnswering(p, req, err));
      else res.destroy();
    });
    // The client went away: so does the request to the preview.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.on('error', () => up.destroy());
    req.pipe(up);
  }

  async function onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const p = await route(req, (status, text) => answerRaw(socket, status, text));
    if (!p) return;
    if (p.provider !== 'local' || !p.target)
      return answerRaw(socket, 404, `no preview at ${shown(req.headers.host)}: preview of run ${p.runId} is not served here`);
    const up = upstream(p, req, true);
    up.on('upgrade', (ur, us, uhead) => {
      us.on('error', () => socket.destroy());
      socket.on('close', () => us.destroy());
      us.on('close', () => socket.destroy());
      const lines = [`HTTP/1.1 ${ur.statusCode ?? 101} ${ur.statusMessage ?? ''}`];
      for (let i = 0; i < ur.rawHeaders.length; i += 2) lines.push(`${ur.rawHeaders[i]}: ${ur.rawHeaders[i + 1]}`);
      socket.write(lines.join('\r\n') + '\r\n\r\n');
      if (uhead.length) socket.write(uhead);
      if (head.length) us.write(head);
      us.pipe(socket);
      socket.pipe(us);
    });
    // The preview's server did not switch protocols: its answer goes back as it is.
    up.on('response', (ur) => {
      const lines = [`HTTP/1.1 ${ur.statusCode ?? 502} ${ur.statusMessage ?? ''}`];
      for (const [k, v] of Object.entries(answerHeaders(ur))) for (const one of [v].flat()) lines.push(`${k}: ${String(one)}`);
      lines.push('connection: close');
      socket.write(lines.join('\r\n') + '\r\n\r\n');
      ur.pipe(socket);
    });
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (socket.writable) answerRaw(socket, 502, notAnswering(p, req, err));
    });
    up.end();
  }

  const server = http.createServer({ headersTimeout: opts.headersTimeoutMs }, (req, res) => {
    onRequest(req, res).catch(() => res.destroy());
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    onUpgrade(req, socket, head).catch(() => socket.destroy());
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://${opts.host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        // Upgraded connections are the router's no more, but end with it.
        for (const s of sockets) s.destroy();
        agent.destroy();
      }),
  };
}
