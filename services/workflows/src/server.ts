import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { DescMessage, Message } from '@bufbuild/protobuf';
import type { ServiceConfig } from '@ameide/config';
import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import { compressionBrotli, compressionGzip, connectNodeAdapter } from '@connectrpc/connect-node';
import type { Compression } from '@connectrpc/connect/protocol';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { createAuthInterceptor, type Authenticator } from './auth.js';
import { unreadableRequestsAreInvalidArgument, toConnectError } from './errors.js';
import { MAX_REQUEST_BYTES } from './limits.js';
import { checkRequest } from './validation.js';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

/**
 * Answers up to this size are compressed at once, on the event loop: Node's asynchronous zlib hands
 * every buffer to its thread pool and back through a stream, which for a small answer costs ten times
 * the compressing itself (about 0.27 ms against 0.025 ms for 1 kB; 0.9 against 0.6 ms for 130 kB).
 * Larger answers go the asynchronous way, so that none holds the loop for long.
 */
export const SYNC_COMPRESS_MAX_BYTES = 256 * 1024;

const GZIP_OPTIONS: zlib.ZlibOptions = { level: 1 };
const BROTLI_OPTIONS: zlib.BrotliOptions = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } };

/**
 * The compressions the service speaks, each reading requests as Connect's own does but writing
 * responses at a fast level: gzip level 1 compresses a page of runs about twice as fast as the default
 * level, to a size within about 10% of it; brotli's default (quality 11) would take longer than the
 * page's query.
 */
export const COMPRESSIONS: Compression[] = [
  { ...compressionGzip, compress: atOnceOrPooled(zlib.gzipSync, gzip, GZIP_OPTIONS) },
  { ...compressionBrotli, compress: atOnceOrPooled(zlib.brotliCompressSync, brotli, BROTLI_OPTIONS) },
];

/** Compresses an answer at once up to SYNC_COMPRESS_MAX_BYTES, on zlib's thread pool beyond. */
function atOnceOrPooled<O>(atOnce: (b: Uint8Array, o: O) => Buffer, pooled: (b: Uint8Array, o: O) => Promise<Buffer>, options: O) {
  return async (bytes: Uint8Array) => new Uint8Array(bytes.length <= SYNC_COMPRESS_MAX_BYTES ? atOnce(bytes, options) : await pooled(bytes, options));
}

/** A listening API server. */
export interface ApiServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** How long connections may take, in milliseconds: settings `AMEIDE_API_{HEADERS,REQUEST,IDLE}_TIMEOUT_SECONDS`. */
export type ApiTimeouts = ServiceConfig['timeouts'];

function checked<T extends Message>(schema: DescMessage, message: T): T {
  try {
    return checkRequest(schema, message);
  } catch (err) {
    throw toConnectError(err);
  }
}

/** Holds every request message to the limits of limits.ts before any handler sees it (checkRequest). */
function requestLimits(): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) return next({ ...req, message: checked(req.method.input, req.message) });
    const messages = req.message;
    return next({
      ...req,
      message: (async function* () {
        for await (const m of messages) yield checked(req.method.input, m);
      })(),
    });
  };
}

/**
 * HTTP/2 (h2c) sessions: one with no open stream is closed (GOAWAY) after `idleMs`; a stream whose
 * request has not fully arrived after `requestMs` is reset. A stream whose request has arrived (a
 * watch, however quiet) keeps its session open.
 */
function limitSession(session: http2.ServerHttp2Session, t: ApiTimeouts): void {
  let open = 0;
  let idle: NodeJS.Timeout | undefined;
  const closeIdle = () => {
    session.close();
    // A peer that never finished its preface does not answer a GOAWAY.
    setTimeout(() => session.destroy(), 1000).unref();
  };
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(closeIdle, t.idleMs).unref();
  };
  armIdle();
  session.on('stream', (stream: http2.ServerHttp2Stream) => {
    open++;
    clearTimeout(idle);
    const receiving = setTimeout(() => {
      if (!stream.readableEnded && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    }, t.requestMs).unref();
    stream.once('end', () => clearTimeout(receiving));
    stream.once('close', () => {
      clearTimeout(receiving);
      if (--open === 0 && !session.closed) armIdle();
    });
  });
  session.once('close', () => clearTimeout(idle));
}

/**
 * Serves Connect, gRPC and gRPC-Web on one plaintext port. Each connection's first bytes decide:
 * the HTTP/2 preface goes to the h2c server (gRPC, Connect over HTTP/2), anything else to HTTP/1.1.
 *
 * Requests are at most MAX_REQUEST_BYTES (larger ones answer resource_exhausted) and held to the
 * limits of limits.ts; a body that is not valid protobuf answers invalid_argument. Connections are
 * timed (`timeouts`): the first bytes and HTTP/1.1 headers within `headersMs`, each request within
 * `requestMs`, closed after `idleMs` without a request in progress. A response is never cut short:
 * a watch that is quiet for longer than any of them keeps its connection.
 */
export async function startApiServer(opts: {
  routes: (router: ConnectRouter) => void;
  authenticate: Authenticator;
  host: string;
  port: number;
  timeouts: ApiTimeouts;
  /** Plain HTTP/1.1 endpoints beside the API, by path (the work item webhook). */
  http?: Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>>;
}): Promise<ApiServer> {
  const t = opts.timeouts;
  const handler = connectNodeAdapter({
    routes: opts.routes,
    interceptors: [createAuthInterceptor(opts.authenticate), requestLimits()],
    acceptCompression: COMPRESSIONS,
    readMaxBytes: MAX_REQUEST_BYTES,
    requestGate: unreadableRequestsAreInvalidArgument,
  });
  let authority = `${opts.host}:${opts.port}`;
  // HTTP/1.0 may leave out Host, from which Connect builds the request URL (it throws without one):
  // such a request reached this server, so it is for this server.
  const serve = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    if (req.headers.host === undefined && !('authority' in req && req.authority)) req.headers.host = authority;
    const plain = req instanceof http.IncomingMessage ? opts.http?.[(req.url ?? '').split('?')[0]!] : undefined;
    if (plain) return void plain(req as http.IncomingMessage, res as http.ServerResponse);
    handler(req, res);
  };
  const h1 = http.createServer(
    {
      headersTimeout: t.headersMs,
      requestTimeout: t.requestMs,
      keepAliveTimeout: t.idleMs,
      // How often the two above are checked (Node's default is every 30 s).
      connectionsCheckingInterval: Math.min(1000, Math.max(100, t.headersMs / 4)),
    },
    serve,
  );
  // Node's HTTP server starts checking those timeouts when it starts listening; this one never
  // listens itself (it is handed connections), so it is told it does.
  h1.emit('listening');
  const h2 = http2.createServer(serve);
  h2.on('session', (session: http2.ServerHttp2Session) => limitSession(session, t));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A peer that resets the connection is not the service's problem (and must not crash it).
    socket.on('error', () => socket.destroy());
    const silent = setTimeout(() => socket.destroy(), t.headersMs).unref();
    socket.once('close', () => clearTimeout(silent));
    let head = Buffer.alloc(0);
    const sniff = () => {
      const chunk: Buffer | null = socket.read();
      if (!chunk) return;
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, H2_PREFACE.length);
      const preface = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      // Wait while what arrived could still be the start of the preface.
      if (preface && n < H2_PREFACE.length) return;
      socket.off('readable', sniff);
      clearTimeout(silent);
      socket.unshift(head);
      (preface ? h2 : h1).emit('connection', socket);
    };
    socket.on('readable', sniff);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  authority = `${opts.host}:${port}`;
  return {
    url: `http://${opts.host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        h1.close(() => {});
        h1.closeAllConnections();
        for (const s of sockets) s.destroy();
      }),
  };
}
