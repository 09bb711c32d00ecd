import type { SubscriptionRow } from '@ameide/db';

/** The channels that deliver outside the notification center, one delivery per notification and subscription. */
export const DELIVERY_CHANNELS = ['webhook', 'email'] as const;

/** A work item's people, as its WorkItemSpec JSON names them. */
export interface WorkItemPeople {
  requester?: unknown;
  subscribers?: unknown;
}

/**
 * Who is told about a run of a work item: its requester and subscribers (from the backlog), and
 * everyone with a subscription to it or to all of the tenant's work items ("*"); `subscriptions`
 * holds exactly those (for a run without work item, only the "*" ones). Each person once, in that order.
 */
export function recipientsOf(item: WorkItemPeople | undefined, subscriptions: SubscriptionRow[]): string[] {
  const people: string[] = [];
  if (typeof item?.requester === 'string') people.push(item.requester);
  if (Array.isArray(item?.subscribers)) for (const s of item.subscribers) if (typeof s === 'string') people.push(s);
  for (const s of subscriptions) people.push(s.person);
  return [...new Set(people.map((p) => p.trim()).filter(Boolean))];
}

/**
 * The webhook and e-mail subscriptions of `person` that a notification goes out on, one per channel
 * and address: of two subscriptions to the same address (the work item's and "*"), the work item's.
 */
export function deliveriesFor(person: string, subscriptions: SubscriptionRow[]): SubscriptionRow[] {
  const mine = subscriptions
    .filter((s) => s.person === person && (DELIVERY_CHANNELS as readonly string[]).includes(s.channel))
    .sort((a, b) => Number(a.workItemId === '*') - Number(b.workItemId === '*'));
  const seen = new Set<string>();
  return mine.filter((s) => {
    const key = `${s.channel}\n${s.address}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
