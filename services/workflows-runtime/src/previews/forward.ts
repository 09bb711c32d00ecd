import { chmod, chown, lstat } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { dirname } from 'node:path';

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

/** The socket's directory was the sandbox's to write; what it holds is not a socket of the sandbox user. */
export class SocketReplaced extends Error {}

/**
 * Makes the sandbox's socket safe to connect to. The sandbox user creates it in a directory of its
 * own, so it could put a symlink there instead, and the worker (root) would connect wherever that
 * points on the host. Once the socket exists, the directory becomes root's (the sandbox can no longer
 * replace its entries), and then it must be a socket (not a symlink) owned by the sandbox user.
 * Returns false while the socket is not there yet; throws SocketReplaced for anything else.
 */
export async function sealSocket(socketPath: string, owner: number): Promise<boolean> {
  const first = await lstat(socketPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!first) return false;
  const dir = dirname(socketPath);
  await chown(dir, 0, 0);
  await chmod(dir, 0o755);
  const sealed = await lstat(socketPath).catch(() => undefined);
  if (!sealed?.isSocket() || sealed.uid !== owner) {
    throw new SocketReplaced(`the preview's socket ${socketPath} is not a socket of the sandbox user: refusing to connect to it`);
  }
  return true;
}

/**
 * Listens on a free port of `host` and relays every connection, byte for byte, to the UNIX socket
 * at `socketPath` (where the sandbox's forwarder listens). With `owner` (the sandbox user), the
 * socket is sealed first (sealSocket): until then connections are closed, and for good when the
 * sandbox put anything but its socket there (`onRefused` says why, once). A connection the socket
 * refuses (the sandbox is not up yet, or gone) is closed.
 */
export async function forwardPort(host: string, socketPath: string, opts: { owner?: number; onRefused?: (why: string) => void } = {}): Promise<PortForward> {
  const open = new Set<net.Socket>();
  let sealed = opts.owner === undefined;
  let refused: string | undefined;
  const ready = async (): Promise<boolean> => {
    if (sealed || refused) return sealed;
    try {
      sealed = await sealSocket(socketPath, opts.owner!);
    } catch (err) {
      refused = (err as Error).message;
      opts.onRefused?.(refused);
    }
    return sealed;
  };
  const server = net.createServer((client) => {
    client.on('error', () => client.destroy());
    client.pause();
    void ready().then((ok) => (ok ? relay(client) : client.destroy()));
  });
  const relay = (client: net.Socket) => {
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
    client.resume();
  };
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
