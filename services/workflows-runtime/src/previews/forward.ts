import net, { type AddressInfo } from 'node:net';

/** The worker's end of a local preview's forwarding: a TCP port whose connections go to the sandbox's socket. */
export interface PortForward {
  host: string;
  port: number;
  /** Stops listening and drops the connections in flight. */
  close(): Promise<void>;
}

/** `host:port`, with brackets around an IPv6 address. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Listens on a free port of `host` and relays every connection, byte for byte, to the UNIX socket
 * at `socketPath` (where the sandbox's forwarder listens). A connection the socket refuses (the
 * sandbox is not up yet, or gone) is closed.
 */
export async function forwardPort(host: string, socketPath: string): Promise<PortForward> {
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    open.add(client);
    open.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return {
    host,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        open.clear();
        server.close(() => resolve());
      }),
  };
}

/** A port of `host` that was free a moment ago (for a server that binds it itself). */
export async function freePort(host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, host, () => resolve());
  });
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
