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
