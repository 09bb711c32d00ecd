import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { createAuthInterceptor, type Authenticator } from './auth.js';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

/** A listening API server. */
export interface ApiServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves Connect, gRPC and gRPC-Web on one plaintext port. Each connection's first bytes decide:
 * the HTTP/2 preface goes to the h2c server (gRPC, Connect over HTTP/2), anything else to HTTP/1.1.
 */
export async function startApiServer(opts: {
  routes: (router: ConnectRouter) => void;
  authenticate: Authenticator;
  host: string;
  port: number;
}): Promise<ApiServer> {
  const handler = connectNodeAdapter({
    routes: opts.routes,
    interceptors: [createAuthInterceptor(opts.authenticate)],
  });
  const h1 = http.createServer(handler);
  const h2 = http2.createServer(handler);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('readable', () => {
      const head: Buffer | null = socket.read(H2_PREFACE.length) ?? socket.read();
      if (!head) {
        socket.once('readable', () => socket.emit('readable'));
        return;
      }
      socket.unshift(head);
      const target = head.subarray(0, H2_PREFACE.length).equals(H2_PREFACE.subarray(0, head.length)) ? h2 : h1;
      target.emit('connection', socket);
    });
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
        h1.closeAllConnections();
        for (const s of sockets) s.destroy();
      }),
  };
}
