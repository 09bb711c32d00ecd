import type { EventEmitter } from 'node:events';

/** The in-process event of new notifications of a tenant (its argument: the people they are for). */
function eventOf(tenantId: string): string {
  return `notifications:${tenantId}`;
}

/** Tells this process's WatchNotifications streams of `tenantId` that `people` have new notifications. */
export function announceNotifications(events: EventEmitter, tenantId: string, people: string[]): void {
  if (people.length) events.emit(eventOf(tenantId), people);
}

/**
 * Resolves when `person` of `tenantId` gets a new notification in this process, after `timeoutMs`
 * (watchers poll too: another replica may have made it), or when `signal` aborts.
 */
export function waitForNotifications(events: EventEmitter, tenantId: string, person: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const event = eventOf(tenantId);
    const onEvent = (people: string[]) => {
      if (people.includes(person)) done();
    };
    const done = () => {
      clearTimeout(timer);
      events.off(event, onEvent);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    events.on(event, onEvent);
    signal.addEventListener('abort', done, { once: true });
    if (signal.aborted) done();
  });
}
