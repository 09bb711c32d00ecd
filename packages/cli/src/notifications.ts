import { create } from '@bufbuild/protobuf';
import { governanceV1 } from '@ameide/contracts';
import { Code, ConnectError, type GovernanceServiceClient } from '@ameide/sdk';
import { commandLineError } from './args.js';
import type { OutputOptions } from './args.js';
import type { Ctx } from './context.js';
import { listPages } from './pages.js';
import { emit, formatOf, protoJson, when, type Output } from './output.js';

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
        o.out(json ? JSON.stringify(protoJson(governanceV1.NotificationSchema, n)) : formatNotification(n));
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

export async function notificationsList(ctx: Ctx, opts: OutputOptions & { person?: string; unread?: boolean; limit?: number }): Promise<number> {
  const api = ctx.governance();
  let unread = 0n;
  const notifications = await listPages(opts.limit, async (pageSize, pageToken) => {
    const r = await api.listNotifications({ person: opts.person ?? '', unreadOnly: opts.unread === true, pageSize, pageToken });
    unread = r.unread;
    return { items: r.notifications, nextPageToken: r.nextPageToken };
  });
  const res = create(governanceV1.ListNotificationsResponseSchema, { notifications, unread });
  // Every page is here: no next page to name.
  const { nextPageToken: _next, ...json } = protoJson(governanceV1.ListNotificationsResponseSchema, res, { alwaysEmitImplicit: true }) as Record<
    string,
    unknown
  >;
  emit(ctx.o, formatOf(opts), json, () => {
    const lines = res.notifications.map(formatNotification);
    return [...(lines.length ? lines : ['no notifications']), `${res.unread} unread`].join('\n');
  });
  return 0;
}

export async function notificationsRead(ctx: Ctx, ids: string[], opts: { person?: string; all?: boolean }): Promise<number> {
  if (opts.all === ids.length > 0) throw commandLineError('notifications read needs notification ids or --all');
  const res = await ctx.governance().markNotificationsRead({ person: opts.person ?? '', ids });
  ctx.o.out(`marked ${res.marked} notification${res.marked === 1n ? '' : 's'} read`);
  return 0;
}

export async function notificationsWatch(ctx: Ctx, opts: OutputOptions & { person?: string }): Promise<number> {
  try {
    return await watchNotifications(ctx.governance(), opts.person ?? '', formatOf(opts) === 'json', ctx.o, ctx.signal);
  } catch (err) {
    if (ctx.signal?.aborted) return 130;
    throw err;
  }
}

export async function notificationsSubscribe(
  ctx: Ctx,
  opts: OutputOptions & { person?: string; channel: string; address?: string; secret?: string; workItem: string },
): Promise<number> {
  const res = await ctx.governance().putSubscription({
    person: opts.person ?? '',
    channel: opts.channel,
    address: opts.address ?? '',
    secret: opts.secret ?? '',
    workItemId: opts.workItem,
  });
  const s = res.subscription!;
  emit(ctx.o, formatOf(opts), protoJson(governanceV1.SubscriptionSchema, s), () => `subscribed: ${formatSubscription(s)}`);
  return 0;
}

export async function notificationsSubscriptions(ctx: Ctx, opts: OutputOptions & { person?: string; workItem?: string }): Promise<number> {
  const api = ctx.governance();
  const res = {
    subscriptions: await listPages(
      undefined,
      async (pageSize, pageToken) => {
        const r = await api.listSubscriptions({ person: opts.person ?? '', workItemId: opts.workItem ?? '', pageSize, pageToken });
        return { items: r.subscriptions, nextPageToken: r.nextPageToken };
      },
      true,
    ),
  };
  emit(
    ctx.o,
    formatOf(opts),
    res.subscriptions.map((s) => protoJson(governanceV1.SubscriptionSchema, s)),
    () => (res.subscriptions.length ? res.subscriptions.map(formatSubscription).join('\n') : 'no subscriptions'),
  );
  return 0;
}

export async function notificationsUnsubscribe(ctx: Ctx, id: string): Promise<number> {
  await ctx.governance().deleteSubscription({ id });
  ctx.o.out(`unsubscribed ${id}`);
  return 0;
}

export async function notificationsDeliveries(
  ctx: Ctx,
  opts: OutputOptions & { state?: string; channel?: string; run?: string; limit?: number },
): Promise<number> {
  const api = ctx.governance();
  const res = {
    deliveries: await listPages(opts.limit, async (pageSize, pageToken) => {
      const r = await api.listDeliveries({ state: opts.state ?? '', channel: opts.channel ?? '', runId: opts.run ?? '', pageSize, pageToken });
      return { items: r.deliveries, nextPageToken: r.nextPageToken };
    }),
  };
  emit(
    ctx.o,
    formatOf(opts),
    res.deliveries.map((d) => protoJson(governanceV1.DeliverySchema, d)),
    () => (res.deliveries.length ? res.deliveries.map(formatDelivery).join('\n') : 'no deliveries'),
  );
  return 0;
}

export async function notificationsStats(ctx: Ctx, opts: OutputOptions): Promise<number> {
  const res = await ctx.governance().getNotificationStats({});
  emit(
    ctx.o,
    formatOf(opts),
    res.channels.map((c) => protoJson(governanceV1.ChannelStatsSchema, c, { alwaysEmitImplicit: true })),
    () => formatStats(res.channels),
  );
  return 0;
}
