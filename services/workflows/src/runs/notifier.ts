import { EventEmitter } from 'node:events';

/**
 * Wakes watchers of a run when a status update is stored by this process. Watchers also poll, so a
 * replica that did not store the update still sees it within the poll interval.
 */
export class RunNotifier {
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  publish(runId: string): void {
    this.emitter.emit(runId);
  }

  /** Resolves on the next update of `runId`, after `timeoutMs`, or when `signal` aborts. */
  wait(runId: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.emitter.off(runId, done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.emitter.once(runId, done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
