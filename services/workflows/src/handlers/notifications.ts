import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext } from '@connectrpc/connect';
import { governanceV1 } from '@ameide/contracts';
import {
  isUuid,
  LATE_COMMIT_MS,
  NotificationRepository,
  RunRepository,
  type ChannelCounts,
  type DeliveryListRow,
  type NotificationRow,
  type SubscriptionRow,
} from '@ameide/db';
import { InvalidFieldError, NotFoundError, toConnectError } from '../errors.js';
import type { GovernanceDeps, GovernanceRoutes } from '../governance/deps.js';
import { waitForNotifications } from '../notifications/wakeup.js';
import { filterId, pageSize, requireId, requireWorkItemId } from '../validation.js';
import { PAGED_LISTS, pageAfter, pageOf } from '../page-token.js';
import { handle, principalOf } from './context.js';

/** Channels a subscription may name. */
export const CHANNELS = ['in_app', 'webhook', 'email'] as const;
/** States of a delivery. */
export const DELIVERY_STATES = ['pending', 'delivered', 'failed', 'dead_lettered'] as const;
/** The shortest webhook secret accepted. */
export const MIN_WEBHOOK_SECRET = 16;

/** Notifications a watch reads at once. */
const WATCH_PAGE = 500;
/** How often a watch looks again when nothing woke it (notifications another replica made). */
const WATCH_POLL_MS = 1000;

// An address a person may give: a local part without spaces, quotes or brackets, and a domain of DNS labels.
const EMAIL_RE = /^[^\s@<>()[\]\\,;:"]{1,64}@(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

export function notificationToProto(row: NotificationRow): governanceV1.Notification {
  return create(governanceV1.NotificationSchema, {
    id: row.id,
    tenantId: row.tenantId,
    person: row.person,
    event: row.event,
    runId: row.runId ?? '',
    workItemId: row.workItemId,
    subject: row.subject,
    body: row.body,
    read: row.read,
    createTime: timestampFromDate(row.createdAt),
  });
}

/** A subscription as the API shows it: whether it has a secret, never the secret. */
export function subscriptionToProto(row: SubscriptionRow): governanceV1.Subscription {
  return create(governanceV1.SubscriptionSchema, {
    id: row.id,
    tenantId: row.tenantId,
    person: row.person,
    channel: row.channel,
    address: row.address,
    workItemId: row.workItemId,
    hasSecret: row.secret !== '',
    createTime: timestampFromDate(row.createdAt),
  });
}

export function deliveryToProto(row: DeliveryListRow): governanceV1.Delivery {
  return create(governanceV1.DeliverySchema, {
    id: row.id,
    notificationId: row.notificationId,
    channel: row.channel,
    address: row.address,
    state: row.state,
    attempts: row.attempts,
    lastError: row.lastError,
    createTime: timestampFromDate(row.createdAt),
    deliveredTime: row.deliveredAt ? timestampFromDate(row.deliveredAt) : undefined,
    event: row.event,
    runId: row.runId ?? '',
  });
}

function channelStatsToProto(c: ChannelCounts): governanceV1.ChannelStats {
  return create(governanceV1.ChannelStatsSchema, {
    channel: c.channel,
    notifications: BigInt(c.notifications),
    attempts: BigInt(c.attempts),
    delivered: BigInt(c.delivered),
    failed: BigInt(c.failed),
    deadLettered: BigInt(c.deadLettered),
    pending: BigInt(c.pending),
    latencyP50Ms: c.latencyP50Ms,
    latencyP95Ms: c.latencyP95Ms,
    latencyP99Ms: c.latencyP99Ms,
  });
}

/** The person a request names, or the caller (its principal's subject) when it names none. */
function personOf(field: string, person: string, ctx: HandlerContext): string {
  if (!person) return principalOf(ctx).subject;
  if (person.trim() !== person || CONTROL_RE.test(person)) throw new InvalidFieldError(field, 'must not start or end with spaces or hold control characters');
  return person;
}

/** `value`, which must be one of `allowed`. */
function oneOf(field: string, value: string, allowed: readonly string[]): string {
  if (!allowed.includes(value)) throw new InvalidFieldError(field, `must be one of ${allowed.join(', ')}`);
  return value;
}

/** The address and secret of a subscription on `channel`, checked. */
function checkAddress(channel: string, address: string, secret: string): void {
  switch (channel) {
    case 'webhook': {
      let url: URL | undefined;
      try {
        url = new URL(address);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname || CONTROL_RE.test(address))
        throw new InvalidFieldError('address', 'must be an http(s) URL for a webhook, e.g. https://hooks.example.com/ameide');
      if ([...secret].length < MIN_WEBHOOK_SECRET)
        throw new InvalidFieldError('secret', `must be at least ${MIN_WEBHOOK_SECRET} characters for a webhook (its deliveries are signed with it)`);
      if (CONTROL_RE.test(secret)) throw new InvalidFieldError('secret', 'must not hold control characters');
      return;
    }
    case 'email':
      if (!EMAIL_RE.test(address)) throw new InvalidFieldError('address', 'must be an e-mail address, e.g. alice@example.com');
      if (secret) throw new InvalidFieldError('secret', 'is only for webhooks');
      return;
    default:
      if (address) throw new InvalidFieldError('address', 'must be empty for in_app (the notification center)');
      if (secret) throw new InvalidFieldError('secret', 'is only for webhooks');
  }
}

/** The notification center, subscriptions, deliveries and their stats. */
export function notificationRoutes(deps: GovernanceDeps): GovernanceRoutes {
  const repo = new NotificationRepository(deps.db);
  const runs = new RunRepository(deps.db);

  return {
    listNotifications: (req, ctx) =>
      handle(async () => {
        const tenantId = principalOf(ctx).tenantId;
        const person = personOf('person', req.person, ctx);
        const size = pageSize(req.pageSize);
        const list = PAGED_LISTS.notifications;
        const filter = [tenantId, person, req.unreadOnly];
        const before = pageAfter(list, req.pageToken, filter)?.[0] as number | undefined;
        const [rows, unread] = await Promise.all([
          repo.listNotifications(tenantId, person, { unreadOnly: req.unreadOnly, limit: size + 1, before }),
          repo.unreadCount(tenantId, person),
        ]);
        const { page, nextPageToken } = pageOf(list, rows, size, (r) => [r.seq], filter);
        return create(governanceV1.ListNotificationsResponseSchema, {
          notifications: page.map((r) => notificationToProto(r)),
          unread: BigInt(unread),
          nextPageToken,
        });
      }),

    markNotificationsRead: (req, ctx) =>
      handle(async () => {
        const tenantId = principalOf(ctx).tenantId;
        const person = personOf('person', req.person, ctx);
        req.ids.forEach((id, i) => {
          if (!isUuid(id)) throw new InvalidFieldError(`ids[${i}]`, 'must be a notification id');
        });
        const marked = await repo.markRead(tenantId, person, req.ids.length ? req.ids : undefined);
        return create(governanceV1.MarkNotificationsReadResponseSchema, { marked: BigInt(marked) });
      }),

    /**
     * The person's notifications, then each new one as it is made, in seq order. Woken at once by a
     * notification this process makes, and looking again every second for those of other replicas.
     */
    async *watchNotifications(req, ctx) {
      let tenantId: string;
      let person: string;
      try {
        tenantId = principalOf(ctx).tenantId;
        person = personOf('person', req.person, ctx);
      } catch (err) {
        throw toConnectError(err);
      }
      // Those sent lately, by id: a notification that committed after a later one is read again as late.
      const sent = new Map<string, Date>();
      let last = 0;
      try {
        while (!ctx.signal.aborted) {
          const late = last > 0 ? await repo.lateNotifications(tenantId, person, last) : [];
          const rows = await repo.notificationsAfter(tenantId, person, last, WATCH_PAGE);
          for (const row of [...late, ...rows]) {
            if (sent.has(row.id)) continue;
            sent.set(row.id, row.createdAt);
            last = Math.max(last, row.seq);
            yield create(governanceV1.WatchNotificationsResponseSchema, { notification: notificationToProto(row) });
          }
          const forgetBefore = Date.now() - 2 * LATE_COMMIT_MS;
          for (const [id, at] of sent) if (at.getTime() < forgetBefore) sent.delete(id);
          if (rows.length === WATCH_PAGE) continue;
          await waitForNotifications(deps.events, tenantId, person, WATCH_POLL_MS, ctx.signal);
        }
      } catch (err) {
        throw toConnectError(err);
      }
    },

    putSubscription: (req, ctx) =>
      handle(async () => {
        const tenantId = principalOf(ctx).tenantId;
        const person = personOf('person', req.person, ctx);
        const channel = oneOf('channel', req.channel, CHANNELS);
        checkAddress(channel, req.address, req.secret);
        const workItemId = !req.workItemId || req.workItemId === '*' ? '*' : requireWorkItemId('work_item_id', req.workItemId);
        const row = await repo.putSubscription({ tenantId, person, channel, address: req.address, workItemId, secret: req.secret });
        return create(governanceV1.PutSubscriptionResponseSchema, { subscription: subscriptionToProto(row) });
      }),

    listSubscriptions: (req, ctx) =>
      handle(async () => {
        const tenantId = principalOf(ctx).tenantId;
        const person = req.person ? personOf('person', req.person, ctx) : undefined;
        const list = PAGED_LISTS.subscriptions;
        const filter = [tenantId, person ?? '', req.workItemId];
        const size = pageSize(req.pageSize);
        const after = pageAfter(list, req.pageToken, filter);
        const rows = await repo.listSubscriptions(tenantId, { person, workItemId: req.workItemId || undefined, limit: size + 1, after });
        const { page, nextPageToken } = pageOf(list, rows, size, (r) => r.listKey, filter);
        return create(governanceV1.ListSubscriptionsResponseSchema, { subscriptions: page.map((r) => subscriptionToProto(r)), nextPageToken });
      }),

    deleteSubscription: (req, ctx) =>
      handle(async () => {
        const tenantId = principalOf(ctx).tenantId;
        const id = requireId('id', req.id);
        if (!isUuid(id) || !(await repo.deleteSubscription(tenantId, id))) throw new NotFoundError('subscription', id);
        return create(governanceV1.DeleteSubscriptionResponseSchema, {});
      }),

    listDeliveries: (req, ctx) =>
      handle(async () => {
        const tenantId = principalOf(ctx).tenantId;
        const state = req.state ? oneOf('state', req.state, DELIVERY_STATES) : undefined;
        const channel = req.channel ? oneOf('channel', req.channel, ['webhook', 'email']) : undefined;
        const runId = await filterId(runs, 'run', tenantId, 'run_id', req.runId);
        const list = PAGED_LISTS.deliveries;
        const filter = [tenantId, state ?? '', channel ?? '', runId ?? ''];
        const size = pageSize(req.pageSize);
        const after = pageAfter(list, req.pageToken, filter);
        const rows = await repo.listDeliveries(tenantId, { state, channel, runId, limit: size + 1, after });
        const { page, nextPageToken } = pageOf(list, rows, size, (r) => r.listKey, filter);
        return create(governanceV1.ListDeliveriesResponseSchema, { deliveries: page.map((r) => deliveryToProto(r)), nextPageToken });
      }),

    getNotificationStats: (_req, ctx) =>
      handle(async () => {
        const stats = await repo.stats(principalOf(ctx).tenantId);
        return create(governanceV1.GetNotificationStatsResponseSchema, { channels: stats.map(channelStatsToProto) });
      }),
  };
}
