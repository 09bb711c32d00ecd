import { toJson } from '@bufbuild/protobuf';
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { governanceV1 } from '@ameide/contracts';
import { Code, ConnectError, type GovernanceServiceClient } from '@ameide/sdk';
import { flag, has, positional, UsageError, type Args } from './args.js';
import type { Output } from './commands.js';

const when = (t: Timestamp | undefined) => (t ? timestampDate(t).toISOString().replace('T', ' ').slice(0, 19) : '-');
const toJsonText = (value: unknown) => JSON.stringify(value, null, 2);

/** How long `watch` keeps reconnecting while the service is unreachable. */
const RECONNECT_FOR_MS = 10 * 60_000;

/** One notification per line: unread mark, time, event, work item, run, subject. */
function formatNotification(n: governanceV1.Notification): string {
  return `${n.read ? ' ' : '*'} ${when(n.createTime)}  ${n.event.padEnd(17)} ${(n.workItemId || '-').padEnd(12)} ${(n.runId || '-').slice(0, 8).padEnd(8)}  ${n.subject}`;
}

/** One subscription per line: id, person, channel, work item, address, whether it signs. */
function formatSubscription(s: governanceV1.Subscription): string {
  const address = s.address || '(notification center)';
  return `${s.id}  ${s.person.padEnd(16)} ${s.channel.padEnd(7)} ${s.workItemId.padEnd(12)} ${address}${s.hasSecret ? '  (signed)' : ''}`;
}

/** One delivery per line: id, state, attempts, channel, event, run, address, and the last error. */
function formatDelivery(d: governanceV1.Delivery): string {
  const attempts = `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`;
  const line = `${d.id}  ${d.state.padEnd(13)} ${attempts.padEnd(11)} ${d.channel.padEnd(7)} ${d.event.padEnd(17)} ${(d.runId || '-').slice(0, 8).padEnd(8)}  ${d.address}`;
  return d.lastError ? `${line}\n    last error: ${d.lastError}` : line;
}

/** The stats as a table: one row per channel. */
function formatStats(channels: governanceV1.ChannelStats[]): string {
  const ms = (v: number) => (v ? `${Math.round(v)} ms` : '-');
  const header = ['channel', 'notifications', 'attempts', 'delivered', 'failed', 'dead-lettered', 'pending', 'p50', 'p95', 'p99'];
  const rows = channels.map((c) => [
    c.channel,
    String(c.notifications),
    String(c.attempts),
    String(c.delivered),
    String(c.failed),
    String(c.deadLettered),
    String(c.pending),
    ms(c.latencyP50Ms),
    ms(c.latencyP95Ms),
    ms(c.latencyP99Ms),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Whether a watch failed because the service was unreachable or went away mid-stream. */
function transient(err: unknown): boolean {
  const e = ConnectError.from(err);
  if (e.code === Code.Internal && /^write (EPIPE|ECONNRESET)$/.test(e.rawMessage)) return true;
  return e.code === Code.Unavailable || e.code === Code.Unknown || e.code === Code.Aborted;
}

/**
 * Prints a person's notifications, then each new one as it arrives, until interrupted. When the
 * service restarts or is briefly unreachable, it reconnects (with backoff, for up to ten minutes)
 * and prints only what it had not printed.
 */
async function watchNotifications(api: GovernanceServiceClient, person: string, json: boolean, o: Output, signal?: AbortSignal): Promise<number> {
  const seen = new Set<string>();
  let failingSince: number | undefined;
  for (;;) {
    try {
      for await (const res of api.watchNotifications({ person }, { signal })) {
        failingSince = undefined;
        const n = res.notification;
        if (!n || seen.has(n.id)) continue;
        seen.add(n.id);
        o.out(json ? JSON.stringify(toJson(governanceV1.NotificationSchema, n)) : formatNotification(n));
      }
      return 0;
    } catch (err) {
      if (!transient(err) || signal?.aborted) throw err;
      const since = (failingSince ??= Date.now());
      if (Date.now() - since > RECONNECT_FOR_MS) throw err;
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.floor((Date.now() - since) / 2000))));
    }
  }
}

/**
 * `ameide notifications list|read|watch|subscribe|subscriptions|unsubscribe|deliveries|stats`: the
 * notification center (the caller's, or `--person`'s), subscriptions to work items' runs on a channel
 * (the notification center, a signed webhook, e-mail), webhook and e-mail deliveries (dead letters
 * too), and per-channel delivery stats.
 */
export async function notificationsCommand(api: GovernanceServiceClient, sub: string, args: Args, o: Output, signal?: AbortSignal): Promise<number> {
  const json = has(args, 'json');
  const person = flag(args, 'person') ?? '';
  switch (sub) {
    case 'list': {
      const unreadOnly = has(args, 'unread') && flag(args, 'unread') !== 'false';
      const res = await api.listNotifications({ person, unreadOnly });
      if (json) o.out(toJsonText(toJson(governanceV1.ListNotificationsResponseSchema, res, { alwaysEmitImplicit: true })));
      else {
        const lines = res.notifications.map(formatNotification);
        o.out([...(lines.length ? lines : ['no notifications']), `${res.unread} unread`].join('\n'));
      }
      return 0;
    }
    case 'read': {
      const ids = args.positionals.slice(2);
      const all = has(args, 'all') && flag(args, 'all') !== 'false';
      if (all === ids.length > 0) throw new UsageError('notifications read needs notification ids or --all');
      const res = await api.markNotificationsRead({ person, ids });
      o.out(`marked ${res.marked} notification${res.marked === 1n ? '' : 's'} read`);
      return 0;
    }
    case 'watch':
      return watchNotifications(api, person, json, o, signal);
    case 'subscribe': {
      const channel = flag(args, 'channel');
      if (!channel) throw new UsageError('notifications subscribe needs --channel webhook|email|in_app');
      const res = await api.putSubscription({
        person,
        channel,
        address: flag(args, 'address') ?? '',
        secret: flag(args, 'secret') ?? '',
        workItemId: flag(args, 'work-item') ?? '*',
      });
      const s = res.subscription!;
      o.out(json ? toJsonText(toJson(governanceV1.SubscriptionSchema, s)) : `subscribed: ${formatSubscription(s)}`);
      return 0;
    }
    case 'subscriptions': {
      const res = await api.listSubscriptions({ person, workItemId: flag(args, 'work-item') ?? '' });
      if (json) o.out(toJsonText(res.subscriptions.map((s) => toJson(governanceV1.SubscriptionSchema, s))));
      else o.out(res.subscriptions.length ? res.subscriptions.map(formatSubscription).join('\n') : 'no subscriptions');
      return 0;
    }
    case 'unsubscribe': {
      const id = positional(args, 2, 'subscription id (notifications subscriptions lists them)');
      await api.deleteSubscription({ id });
      o.out(`unsubscribed ${id}`);
      return 0;
    }
    case 'deliveries': {
      const res = await api.listDeliveries({ state: flag(args, 'state') ?? '', channel: flag(args, 'channel') ?? '', runId: flag(args, 'run') ?? '' });
      if (json) o.out(toJsonText(res.deliveries.map((d) => toJson(governanceV1.DeliverySchema, d))));
      else o.out(res.deliveries.length ? res.deliveries.map(formatDelivery).join('\n') : 'no deliveries');
      return 0;
    }
    case 'stats': {
      const res = await api.getNotificationStats({});
      if (json) o.out(toJsonText(res.channels.map((c) => toJson(governanceV1.ChannelStatsSchema, c, { alwaysEmitImplicit: true }))));
      else o.out(formatStats(res.channels));
      return 0;
    }
    default:
      throw new UsageError('notifications needs list, read, watch, subscribe, subscriptions, unsubscribe, deliveries or stats');
  }
}
