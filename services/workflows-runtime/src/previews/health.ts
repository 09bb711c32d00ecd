import http from 'node:http';

/** How a health check ended. */
export type HealthOutcome =
  { kind: 'healthy'; status: number; afterMs: number } | { kind: 'exited'; exitCode: number } | { kind: 'timeout' } | { kind: 'cancelled' };

/** How long the health check polls quickly, and how often then. */
const QUICK_POLLS_MS = 3000;
const QUICK_POLL_MS = 15;

/** One GET of `url`: its status, or undefined when nothing answered (refused, reset, too slow). */
export function probe(url: string, timeoutMs = 2000): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close', 'user-agent': 'ameide-preview-health' }, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/**
 * Requests `url` until it answers 2xx or 3xx, the preview's process exits (`exited` settles), the
 * time is up, or `signal` aborts, whichever comes first. `onPoll` is called after every attempt.
 * For the first few seconds it polls every 15 ms (a server that starts in a few dozen milliseconds is
 * found then; a poll is one local connection), later every `intervalMs` (default 250).
 */
export async function waitHealthy(opts: {
  url: string;
  timeoutMs: number;
  exited: Promise<{ exitCode: number }>;
  signal?: AbortSignal;
  intervalMs?: number;
  onPoll?: (status: number | undefined) => void;
}): Promise<HealthOutcome> {
  const started = Date.now();
  let exit: { exitCode: number } | undefined;
  void opts.exited.then((r) => (exit = r));
  let wake: (() => void) | undefined;
  const onAbort = () => wake?.();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  void opts.exited.then(() => wake?.());
  try {
    for (;;) {
      if (opts.signal?.aborted) return { kind: 'cancelled' };
      if (exit) return { kind: 'exited', exitCode: exit.exitCode };
      const left = opts.timeoutMs - (Date.now() - started);
      if (left <= 0) return { kind: 'timeout' };
      const status = await probe(opts.url, Math.min(2000, Math.max(100, left)));
      opts.onPoll?.(status);
      if (status !== undefined && status >= 200 && status < 400) return { kind: 'healthy', status, afterMs: Date.now() - started };
      const interval = Date.now() - started < QUICK_POLLS_MS ? Math.min(QUICK_POLL_MS, opts.intervalMs ?? 250) : (opts.intervalMs ?? 250);
      const pause = Math.min(interval, opts.timeoutMs - (Date.now() - started));
      if (pause > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, pause);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
