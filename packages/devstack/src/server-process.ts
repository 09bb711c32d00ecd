import { ADDRESS_IN_USE, isListening, PortInUseError } from './net.js';
import { describeExit, lastLine, logSince, startProcess, type ManagedProcess } from './process.js';

/**
 * Starts a server child and waits until it is ready: it has written `ready` to its log (which it
 * does only once it has bound its port) and `port` accepts connections. Waiting for the port alone
 * would take another process's listener for the child's. If the child exits first, its log says
 * why: a port held by another process throws PortInUseError (naming the port from the log when it
 * says), anything else an error quoting its last complaint.
 */
export async function startServerProcess(opts: {
  what: string;
  cmd: string;
  args: string[];
  env: Record<string, string>;
  logFile: string;
  port: number;
  ready: RegExp;
  timeoutMs: number;
}): Promise<ManagedProcess> {
  const proc = startProcess(opts.cmd, opts.args, { env: opts.env, logFile: opts.logFile });
  const deadline = Date.now() + opts.timeoutMs;
  let exit: Awaited<ManagedProcess['exited']> | undefined;
  void proc.exited.then((e) => (exit = e));
  while (Date.now() < deadline) {
    if (exit) {
      const log = logSince(opts.logFile, proc.logOffset);
      const inUse = lastLine(log, ADDRESS_IN_USE);
      if (inUse) {
        const port = Number(/:(\d+): bind|port (\d+)/i.exec(inUse)?.slice(1).find(Boolean) ?? opts.port);
        throw new PortInUseError(port, `${opts.what} could not bind port ${port}: ${inUse} (log: ${opts.logFile})`);
      }
      const why = lastLine(log, /error|fatal|panic/i);
      throw Object.assign(new Error(`${opts.what} exited before it was ready (${describeExit(exit)})${why ? `: ${why}` : ''} (log: ${opts.logFile})`), {
        expected: true,
      });
    }
    if (opts.ready.test(logSince(opts.logFile, proc.logOffset)) && (await isListening(opts.port)) && proc.alive()) return proc;
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop();
  throw Object.assign(new Error(`${opts.what} was not ready on port ${opts.port} within ${opts.timeoutMs / 1000}s (log: ${opts.logFile})`), { expected: true });
}
