import net from 'node:net';

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** True when something accepts connections on host:port. */
export function isListening(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Waits until host:port accepts connections, or throws after `timeoutMs` naming `what`. */
export async function waitForPort(port: number, what: string, timeoutMs: number, alive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await isListening(port)) return;
    if (alive && !alive()) throw Object.assign(new Error(`${what} exited before listening on port ${port}`), { expected: true });
    await new Promise((r) => setTimeout(r, 100));
  }
  throw Object.assign(new Error(`${what} did not listen on port ${port} within ${timeoutMs / 1000}s`), { expected: true });
}

/** True when nothing is bound to host:port (checked by binding it for a moment). */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** The words every server here uses when its port is taken (Go, Postgres, Node). */
export const ADDRESS_IN_USE = /address already in use|EADDRINUSE|port \d+ is in use|could not create lock file ".*\.s\.PGSQL/i;

/** A server could not bind its port because another process holds it. */
export class PortInUseError extends Error {
  override name = 'PortInUseError';
  readonly expected = true;
  constructor(
    readonly port: number,
    message: string,
  ) {
    super(message);
  }
}

/** Picks a port for one of an ephemeral stack's servers; `what` names the server (tests inject races). */
export type PortPicker = (what: string) => Promise<number>;
