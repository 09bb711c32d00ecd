import { Option, type Command } from 'commander';
import { governanceV1 } from '@ameide/contracts';
import { Code, ConnectError, type GovernanceServiceClient } from '@ameide/sdk';
import { commandLineError, examples } from './args.js';
import { act, withLimit, withOutput, type OutputOptions } from './commands.js';
import type { Ctx } from './context.js';
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

/**
 * `ameide notifications list|read|watch|subscribe|subscriptions|unsubscribe|deliveries|stats`: the
 * notification center (the caller's, or `--person`'s), subscriptions to work items' runs on a channel
 * (the notification center, a signed webhook, e-mail), webhook and e-mail deliveries (dead letters
 * too), and per-channel delivery stats.
 */
export function registerNotifications(program: Command, ctx: Ctx): void {
  const notifications = program
    .command('notifications')
    .description("the notification center, subscriptions to work items' runs (in-app, signed webhooks, e-mail), deliveries and their stats");
  examples(
    notifications,
    'ameide notifications list --unread',
    'ameide notifications subscribe --channel webhook --address https://hooks.example.com/ameide --secret "$SECRET" --work-item PROJ-12',
  );
  const person = (cmd: Command) => cmd.option('--person <person>', "someone else's (default: yours)");

  examples(
    withLimit(
      withOutput(
        person(notifications.command('list').description('the notification center, newest first, and the unread count').option('--unread', 'only unread ones')),
      ),
    ),
    'ameide notifications list --unread',
  ).action(
    act(ctx, async (opts: OutputOptions & { person?: string; unread?: boolean; limit?: number }) => {
      const res = await ctx.governance().listNotifications({ person: opts.person ?? '', unreadOnly: opts.unread === true, pageSize: opts.limit ?? 0 });
      emit(ctx.o, formatOf(opts), protoJson(governanceV1.ListNotificationsResponseSchema, res, { alwaysEmitImplicit: true }), () => {
        const lines = res.notifications.map(formatNotification);
        return [...(lines.length ? lines : ['no notifications']), `${res.unread} unread`].join('\n');
      });
      return 0;
    }),
  );

  examples(
    person(notifications.command('read').description('mark notifications read').argument('[ids...]', 'notification ids').option('--all', 'every notification')),
    'ameide notifications read --all',
    'ameide notifications read 5d0c… 91aa…',
  ).action(
    act(ctx, async (ids: string[], opts: { person?: string; all?: boolean }) => {
      if (opts.all === ids.length > 0) throw commandLineError('notifications read needs notification ids or --all');
      const res = await ctx.governance().markNotificationsRead({ person: opts.person ?? '', ids });
      ctx.o.out(`marked ${res.marked} notification${res.marked === 1n ? '' : 's'} read`);
      return 0;
    }),
  );

  examples(
    withOutput(person(notifications.command('watch').description('print notifications, then each new one as it arrives, until interrupted')), ['json']),
    'ameide notifications watch -o json   # JSON lines',
  ).action(
    act(ctx, async (opts: OutputOptions & { person?: string }) => {
      try {
        return await watchNotifications(ctx.governance(), opts.person ?? '', formatOf(opts) === 'json', ctx.o, ctx.signal);
      } catch (err) {
        if (ctx.signal?.aborted) return 130;
        throw err;
      }
    }),
  );

  examples(
    withOutput(
      person(
        notifications
          .command('subscribe')
          .description("subscribe to a work item's run notifications (default: every work item's) on a channel")
          .addOption(new Option('--channel <channel>', 'where notifications go').choices(['webhook', 'email', 'in_app']).makeOptionMandatory())
          .option('--address <url|e-mail>', "the webhook's URL or the e-mail address")
          .option('--secret <secret>', 'webhook signing secret (deliveries carry an HMAC signature)')
          .option('--work-item <id>', 'the work item, or * for every one', '*'),
      ),
      ['json', 'yaml'],
    ),
    'ameide notifications subscribe --channel email --address alice@example.com --work-item PROJ-12',
    'ameide notifications subscribe --channel webhook --address https://hooks.example.com/ameide --secret "$SECRET"',
  ).action(
    act(ctx, async (opts: OutputOptions & { person?: string; channel: string; address?: string; secret?: string; workItem: string }) => {
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
    }),
  );

  examples(
    withOutput(person(notifications.command('subscriptions').description('list subscriptions').option('--work-item <id>', "only this work item's"))),
    'ameide notifications subscriptions --work-item PROJ-12',
  ).action(
    act(ctx, async (opts: OutputOptions & { person?: string; workItem?: string }) => {
      const res = await ctx.governance().listSubscriptions({ person: opts.person ?? '', workItemId: opts.workItem ?? '' });
      emit(
        ctx.o,
        formatOf(opts),
        res.subscriptions.map((s) => protoJson(governanceV1.SubscriptionSchema, s)),
        () => (res.subscriptions.length ? res.subscriptions.map(formatSubscription).join('\n') : 'no subscriptions'),
      );
      return 0;
    }),
  );

  examples(
    notifications.command('unsubscribe').description('delete a subscription').argument('<id>', 'subscription id (notifications subscriptions lists them)'),
    'ameide notifications unsubscribe 2b6f…',
  ).action(
    act(ctx, async (id: string) => {
      await ctx.governance().deleteSubscription({ id });
      ctx.o.out(`unsubscribed ${id}`);
      return 0;
    }),
  );

  examples(
    withLimit(
      withOutput(
        notifications
          .command('deliveries')
          .description('webhook and e-mail deliveries: state, attempts, channel, event, run, address, last error')
          .addOption(new Option('--state <state>', 'only deliveries in this state').choices(['pending', 'delivered', 'failed', 'dead_lettered']))
          .addOption(new Option('--channel <channel>', 'only this channel').choices(['webhook', 'email']))
          .option('--run <id>', "only this run's deliveries"),
      ),
    ),
    'ameide notifications deliveries --state dead_lettered',
  ).action(
    act(ctx, async (opts: OutputOptions & { state?: string; channel?: string; run?: string; limit?: number }) => {
      const res = await ctx
        .governance()
        .listDeliveries({ state: opts.state ?? '', channel: opts.channel ?? '', runId: opts.run ?? '', pageSize: opts.limit ?? 0 });
      emit(
        ctx.o,
        formatOf(opts),
        res.deliveries.map((d) => protoJson(governanceV1.DeliverySchema, d)),
        () => (res.deliveries.length ? res.deliveries.map(formatDelivery).join('\n') : 'no deliveries'),
      );
      return 0;
    }),
  );

  examples(
    withOutput(notifications.command('stats').description('deliveries per channel: counts and latency p50/p95/p99')),
    'ameide notifications stats',
  ).action(
    act(ctx, async (opts: OutputOptions) => {
      const res = await ctx.governance().getNotificationStats({});
      emit(
        ctx.o,
        formatOf(opts),
        res.channels.map((c) => protoJson(governanceV1.ChannelStatsSchema, c, { alwaysEmitImplicit: true })),
        () => formatStats(res.channels),
      );
      return 0;
    }),
  );
}
