import { and, asc, desc, eq, gt, inArray, lt, lte, ne, notInArray, sql, type SQL } from 'drizzle-orm';
import type { Db } from './client.js';
import { afterKey, keyTime, type ListKey } from './keyset.js';
import { evidence, impediments, notificationDeliveries, notifications, subscriptions } from './schema.js';

export type NotificationRow = typeof notifications.$inferSelect;
export type SubscriptionRow = typeof subscriptions.$inferSelect;
export type NotificationDeliveryRow = typeof notificationDeliveries.$inferSelect;
type EvidenceRow = typeof evidence.$inferSelect;
type ImpedimentRow = typeof impediments.$inferSelect;

/** A notification to store: one person, one event of one run (`dedupeKey` `<runId>:<event>:<person>`). */
export type NewNotification = Pick<NotificationRow, 'tenantId' | 'person' | 'event' | 'runId' | 'workItemId' | 'dedupeKey' | 'subject' | 'body' | 'content'>;

/** A delivery to make: one notification over one webhook or e-mail subscription. */
export type NewDelivery = Pick<NotificationDeliveryRow, 'tenantId' | 'notificationId' | 'subscriptionId' | 'channel' | 'address'>;

/** A delivery with the notification it carries, for lists. */
export type DeliveryListRow = NotificationDeliveryRow & { event: string; runId: string | null };

/** A delivery with what sending it needs: its notification and its subscription (gone when it was deleted since). */
export interface DeliveryWork {
  delivery: NotificationDeliveryRow;
  notification: NotificationRow;
  subscription?: SubscriptionRow;
}

/** Counts of one channel (GetNotificationStats). Latencies in milliseconds; 0 without deliveries. */
export interface ChannelCounts {
  channel: string;
  notifications: number;
  attempts: number;
  delivered: number;
  failed: number;
  deadLettered: number;
  pending: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  latencyP99Ms: number;
}

/** Delivery states in which nothing more is sent. */
export const FINAL_DELIVERY_STATES = ['delivered', 'dead_lettered'];

/** How long after it was made a notification may still be committing (a watcher looks back this far for late ones). */
export const LATE_COMMIT_MS = 30_000;

/**
 * The notification center (notifications per person), subscriptions, and the webhook and e-mail
 * deliveries of notifications. Every query is scoped by tenant, except that a delivery may be looked
 * up by its id alone (the follow-up activities get nothing else); what follows uses its tenant.
 */
export class NotificationRepository {
  constructor(private readonly db: Db) {}

  // --- subscriptions ------------------------------------------------------------------------------

  /** Creates a subscription, or updates the secret of the one with the same person, channel, address and work item. */
  async putSubscription(s: Pick<SubscriptionRow, 'tenantId' | 'person' | 'channel' | 'address' | 'workItemId' | 'secret'>): Promise<SubscriptionRow> {
    const [row] = await this.db
      .insert(subscriptions)
      .values(s)
      .onConflictDoUpdate({
        target: [subscriptions.tenantId, subscriptions.person, subscriptions.channel, subscriptions.address, subscriptions.workItemId],
        set: { secret: s.secret },
      })
      .returning();
    return row!;
  }

  async getSubscription(tenantId: string, id: string): Promise<SubscriptionRow | undefined> {
    const rows = await this.db
      .select()
      .from(subscriptions)
      .where(and(eq(subscriptions.tenantId, tenantId), eq(subscriptions.id, id)))
      .limit(1);
    return rows[0];
  }

  /**
   * A tenant's subscriptions, of one person and work item when given, oldest first (then by id), from
   * after `after` (a row's `listKey`: creation time to the microsecond, id).
   */
  async listSubscriptions(
    tenantId: string,
    f: { person?: string; workItemId?: string; limit: number; after?: ListKey },
  ): Promise<Array<SubscriptionRow & { listKey: ListKey }>> {
    const where = [eq(subscriptions.tenantId, tenantId)];
    if (f.person) where.push(eq(subscriptions.person, f.person));
    if (f.workItemId) where.push(eq(subscriptions.workItemId, f.workItemId));
    if (f.after) where.push(afterKey('asc', [subscriptions.createdAt, subscriptions.id], [sql`${f.after[0]}::timestamptz`, sql`${f.after[1]}::uuid`]));
    const rows = await this.db
      .select({ s: subscriptions, keyTime: keyTime(subscriptions.createdAt) })
      .from(subscriptions)
      .where(and(...where))
      .orderBy(asc(subscriptions.createdAt), asc(subscriptions.id))
      .limit(f.limit);
    return rows.map(({ s, keyTime }) => ({ ...s, listKey: [keyTime, s.id] }));
  }

  /** Subscriptions that match a work item: its own and the tenant-wide ones ("*"); only those for a run without work item. */
  async subscriptionsFor(tenantId: string, workItemId: string): Promise<SubscriptionRow[]> {
    const items = workItemId ? [workItemId, '*'] : ['*'];
    return this.db
      .select()
      .from(subscriptions)
      .where(and(eq(subscriptions.tenantId, tenantId), inArray(subscriptions.workItemId, items)))
      .orderBy(asc(subscriptions.createdAt), asc(subscriptions.id));
  }

  /** Deletes a subscription; false when the tenant has none with this id. */
  async deleteSubscription(tenantId: string, id: string): Promise<boolean> {
    const rows = await this.db
      .delete(subscriptions)
      .where(and(eq(subscriptions.tenantId, tenantId), eq(subscriptions.id, id)))
      .returning({ id: subscriptions.id });
    return rows.length > 0;
  }

  // --- notifications ------------------------------------------------------------------------------

  /**
   * Stores notifications, each at most once per tenant and dedupe key (a repeat keeps the first), and
   * returns every one of them as stored, with the ids this call created.
   */
  async insertNotifications(tenantId: string, rows: NewNotification[]): Promise<{ rows: NotificationRow[]; created: Set<string> }> {
    if (rows.length === 0) return { rows: [], created: new Set() };
    if (rows.some((r) => r.tenantId !== tenantId)) throw new Error('notifications of another tenant');
    const inserted = await this.db
      .insert(notifications)
      .values(rows)
      .onConflictDoNothing({ target: [notifications.tenantId, notifications.dedupeKey] })
      .returning({ id: notifications.id });
    const stored = await this.db
      .select()
      .from(notifications)
      .where(
        and(
          eq(notifications.tenantId, tenantId),
          inArray(
            notifications.dedupeKey,
            rows.map((r) => r.dedupeKey),
          ),
        ),
      )
      .orderBy(asc(notifications.seq));
    return { rows: stored, created: new Set(inserted.map((r) => r.id)) };
  }

  async getNotification(tenantId: string, id: string): Promise<NotificationRow | undefined> {
    const rows = await this.db
      .select()
      .from(notifications)
      .where(and(eq(notifications.tenantId, tenantId), eq(notifications.id, id)))
      .limit(1);
    return rows[0];
  }

  /** A person's notifications, newest first (by seq), from before the seq `before`. */
  async listNotifications(tenantId: string, person: string, f: { unreadOnly?: boolean; limit: number; before?: number }): Promise<NotificationRow[]> {
    const where = [eq(notifications.tenantId, tenantId), eq(notifications.person, person)];
    if (f.unreadOnly) where.push(eq(notifications.read, false));
    if (f.before !== undefined) where.push(lt(notifications.seq, f.before));
    return this.db
      .select()
      .from(notifications)
      .where(and(...where))
      .orderBy(desc(notifications.seq))
      .limit(f.limit);
  }

  async unreadCount(tenantId: string, person: string): Promise<number> {
    const [row] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(notifications)
      .where(and(eq(notifications.tenantId, tenantId), eq(notifications.person, person), eq(notifications.read, false)));
    return row?.n ?? 0;
  }

  /** Marks a person's notifications read (those of `ids`, or all); returns how many were unread. */
  async markRead(tenantId: string, person: string, ids?: string[]): Promise<number> {
    const where = [eq(notifications.tenantId, tenantId), eq(notifications.person, person), eq(notifications.read, false)];
    if (ids) {
      if (ids.length === 0) return 0;
      where.push(inArray(notifications.id, ids));
    }
    const rows = await this.db
      .update(notifications)
      .set({ read: true })
      .where(and(...where))
      .returning({ id: notifications.id });
    return rows.length;
  }

  /** A person's notifications after `seq`, in seq order. */
  async notificationsAfter(tenantId: string, person: string, seq: number, limit: number): Promise<NotificationRow[]> {
    return this.db
      .select()
      .from(notifications)
      .where(and(eq(notifications.tenantId, tenantId), eq(notifications.person, person), gt(notifications.seq, seq)))
      .orderBy(asc(notifications.seq))
      .limit(limit);
  }

  /**
   * A person's notifications up to `seq` made in the last LATE_COMMIT_MS, in seq order: a transaction
   * that took its seq before another may commit after it, so a watcher that read up to the other's
   * seq looks here for it (and skips those it sent).
   */
  async lateNotifications(tenantId: string, person: string, seq: number): Promise<NotificationRow[]> {
    return this.db
      .select()
      .from(notifications)
      .where(
        and(
          eq(notifications.tenantId, tenantId),
          eq(notifications.person, person),
          lte(notifications.seq, seq),
          gt(notifications.createdAt, sql`now() - make_interval(secs => ${LATE_COMMIT_MS / 1000})`),
        ),
      )
      .orderBy(asc(notifications.seq));
  }

  // --- deliveries ---------------------------------------------------------------------------------

  /** Makes deliveries, each at most once per notification and subscription. */
  async insertDeliveries(rows: NewDelivery[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db
      .insert(notificationDeliveries)
      .values(rows)
      .onConflictDoNothing({ target: [notificationDeliveries.notificationId, notificationDeliveries.subscriptionId] });
  }

  /** The deliveries of some notifications, oldest first. */
  async deliveriesOf(tenantId: string, notificationIds: string[]): Promise<NotificationDeliveryRow[]> {
    if (notificationIds.length === 0) return [];
    return this.db
      .select()
      .from(notificationDeliveries)
      .where(and(eq(notificationDeliveries.tenantId, tenantId), inArray(notificationDeliveries.notificationId, notificationIds)))
      .orderBy(asc(notificationDeliveries.createdAt), asc(notificationDeliveries.id));
  }

  /** A delivery; `tenantId` undefined means any tenant (the follow-up activities, which know the id only). */
  async getDelivery(tenantId: string | undefined, id: string): Promise<NotificationDeliveryRow | undefined> {
    const where =
      tenantId === undefined ? eq(notificationDeliveries.id, id) : and(eq(notificationDeliveries.id, id), eq(notificationDeliveries.tenantId, tenantId));
    const rows = await this.db.select().from(notificationDeliveries).where(where).limit(1);
    return rows[0];
  }

  /** A delivery with its notification and subscription (see getDelivery for `tenantId`). */
  async deliveryWork(tenantId: string | undefined, id: string): Promise<DeliveryWork | undefined> {
    const delivery = await this.getDelivery(tenantId, id);
    if (!delivery) return undefined;
    const notification = await this.getNotification(delivery.tenantId, delivery.notificationId);
    if (!notification) return undefined;
    const subscription = await this.getSubscription(delivery.tenantId, delivery.subscriptionId);
    return { delivery, notification, subscription };
  }

  /**
   * Counts an attempt of a delivery before it is made; undefined (and nothing counted) when the
   * delivery is delivered or dead-lettered already, so nothing is sent twice.
   */
  async startAttempt(tenantId: string, id: string): Promise<NotificationDeliveryRow | undefined> {
    const [row] = await this.db
      .update(notificationDeliveries)
      .set({ attempts: sql`${notificationDeliveries.attempts} + 1` })
      .where(
        and(eq(notificationDeliveries.tenantId, tenantId), eq(notificationDeliveries.id, id), notInArray(notificationDeliveries.state, FINAL_DELIVERY_STATES)),
      )
      .returning();
    return row;
  }

  /** Marks a delivery delivered, its latency counted from its notification's creation. */
  async markDelivered(tenantId: string, id: string): Promise<NotificationDeliveryRow | undefined> {
    const [row] = await this.db
      .update(notificationDeliveries)
      .set({
        state: 'delivered',
        lastError: '',
        deliveredAt: sql`now()`,
        latencyMs: sql`greatest(0, round(extract(epoch from (now() - (select ${notifications.createdAt} from ${notifications} where ${notifications.id} = ${notificationDeliveries.notificationId}))) * 1000))::int`,
      })
      .where(and(eq(notificationDeliveries.tenantId, tenantId), eq(notificationDeliveries.id, id)))
      .returning();
    return row;
  }

  /** Records a failed attempt (a delivery delivered or dead-lettered meanwhile stays as it is). */
  async markFailed(tenantId: string, id: string, error: string): Promise<void> {
    await this.db
      .update(notificationDeliveries)
      .set({ state: 'failed', lastError: error })
      .where(
        and(eq(notificationDeliveries.tenantId, tenantId), eq(notificationDeliveries.id, id), notInArray(notificationDeliveries.state, FINAL_DELIVERY_STATES)),
      );
  }

  /** Gives a delivery up (one that was delivered stays delivered); undefined when there is no such delivery. */
  async deadLetter(tenantId: string | undefined, id: string, error: string): Promise<NotificationDeliveryRow | undefined> {
    const scope =
      tenantId === undefined ? eq(notificationDeliveries.id, id) : and(eq(notificationDeliveries.id, id), eq(notificationDeliveries.tenantId, tenantId));
    const [row] = await this.db
      .update(notificationDeliveries)
      .set({ state: 'dead_lettered', lastError: error })
      .where(and(scope, ne(notificationDeliveries.state, 'delivered')))
      .returning();
    return row ?? (await this.getDelivery(tenantId, id));
  }

  /**
   * A tenant's deliveries, newest first (then by id), with the event and run of their notification,
   * from after `after` (a row's `listKey`: creation time to the microsecond, id).
   */
  async listDeliveries(
    tenantId: string,
    f: { state?: string; channel?: string; runId?: string; limit: number; after?: ListKey },
  ): Promise<Array<DeliveryListRow & { listKey: ListKey }>> {
    const where: SQL[] = [eq(notificationDeliveries.tenantId, tenantId)];
    if (f.state) where.push(eq(notificationDeliveries.state, f.state));
    if (f.channel) where.push(eq(notificationDeliveries.channel, f.channel));
    if (f.runId) where.push(eq(notifications.runId, f.runId));
    if (f.after)
      where.push(afterKey('desc', [notificationDeliveries.createdAt, notificationDeliveries.id], [sql`${f.after[0]}::timestamptz`, sql`${f.after[1]}::uuid`]));
    const rows = await this.db
      .select({ d: notificationDeliveries, event: notifications.event, runId: notifications.runId, keyTime: keyTime(notificationDeliveries.createdAt) })
      .from(notificationDeliveries)
      .innerJoin(notifications, eq(notifications.id, notificationDeliveries.notificationId))
      .where(and(...where))
      .orderBy(desc(notificationDeliveries.createdAt), desc(notificationDeliveries.id))
      .limit(f.limit);
    return rows.map((r) => ({ ...r.d, event: r.event, runId: r.runId, listKey: [r.keyTime, r.d.id] }));
  }

  /**
   * Counts per channel: `in_app` (every notification is delivered to its person's center when it is
   * stored), then `webhook` and `email` (attempts, states, latency percentiles of the delivered).
   */
  async stats(tenantId: string): Promise<ChannelCounts[]> {
    const [inApp] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(notifications)
      .where(eq(notifications.tenantId, tenantId));
    const d = notificationDeliveries;
    const count = (state: string) => sql<number>`(count(*) filter (where ${d.state} = ${state}))::int`;
    const pct = (p: number) =>
      sql<number | null>`(percentile_cont(${p}::float8) within group (order by ${d.latencyMs}) filter (where ${d.state} = 'delivered'))::float8`;
    const rows = await this.db
      .select({
        channel: d.channel,
        notifications: sql<number>`count(distinct ${d.notificationId})::int`,
        attempts: sql<number>`coalesce(sum(${d.attempts}), 0)::int`,
        delivered: count('delivered'),
        failed: count('failed'),
        deadLettered: count('dead_lettered'),
        pending: count('pending'),
        p50: pct(0.5),
        p95: pct(0.95),
        p99: pct(0.99),
      })
      .from(d)
      .where(eq(d.tenantId, tenantId))
      .groupBy(d.channel);
    const n = inApp?.n ?? 0;
    const out: ChannelCounts[] = [
      {
        channel: 'in_app',
        notifications: n,
        attempts: n,
        delivered: n,
        failed: 0,
        deadLettered: 0,
        pending: 0,
        latencyP50Ms: 0,
        latencyP95Ms: 0,
        latencyP99Ms: 0,
      },
    ];
    for (const channel of ['webhook', 'email', ...rows.map((r) => r.channel).filter((c) => c !== 'webhook' && c !== 'email')]) {
      const r = rows.find((x) => x.channel === channel);
      out.push({
        channel,
        notifications: r?.notifications ?? 0,
        attempts: r?.attempts ?? 0,
        delivered: r?.delivered ?? 0,
        failed: r?.failed ?? 0,
        deadLettered: r?.deadLettered ?? 0,
        pending: r?.pending ?? 0,
        latencyP50Ms: Number(r?.p50 ?? 0),
        latencyP95Ms: Number(r?.p95 ?? 0),
        latencyP99Ms: Number(r?.p99 ?? 0),
      });
    }
    return out;
  }

  // --- what a run's notifications say -------------------------------------------------------------

  /** A run's evidence files, by name. */
  async evidenceOf(tenantId: string, runId: string): Promise<EvidenceRow[]> {
    return this.db
      .select()
      .from(evidence)
      .where(and(eq(evidence.tenantId, tenantId), eq(evidence.runId, runId)))
      .orderBy(asc(evidence.name));
  }

  /** The impediment a run raised (the first, should there be several). */
  async impedimentOf(tenantId: string, runId: string): Promise<ImpedimentRow | undefined> {
    const rows = await this.db
      .select()
      .from(impediments)
      .where(and(eq(impediments.tenantId, tenantId), eq(impediments.runId, runId)))
      .orderBy(asc(impediments.createdAt), asc(impediments.id))
      .limit(1);
    return rows[0];
  }
}
