import { ApplicationFailure } from '@temporalio/common';
import type { FollowupActivities, FollowupEvent } from '@ameide/temporal';
import {
  FINAL_DELIVERY_STATES,
  isUuid,
  NotificationRepository,
  PlanRepository,
  PreviewRepository,
  RunRepository,
  WorkItemRepository,
  type DeliveryWork,
  type NewDelivery,
  type NewNotification,
  type RunRow,
} from '@ameide/db';
import type { GovernanceDeps } from '../governance/deps.js';
import { composeContent, eventsOf, type RunFacts } from './compose.js';
import type { NotificationContent } from './content.js';
import { createMailer } from './email.js';
import { DeliveryError, oneLine } from './errors.js';
import { deliveriesFor, recipientsOf, type WorkItemPeople } from './recipients.js';
import { renderEmail, webhookPayload } from './render.js';
import { deliverWebhook } from './webhook.js';
import { announceNotifications } from './wakeup.js';

/** The failure type of a delivery attempt that failed (its `nonRetryable` says whether another attempt may succeed). */
export const DELIVERY_FAILED = 'DeliveryFailed';

/** What `deliverNotification` throws: retryable when the receiver was away or busy, non-retryable when it never can succeed. */
export function deliveryFailure(err: DeliveryError): ApplicationFailure {
  return ApplicationFailure.create({ message: err.message, type: DELIVERY_FAILED, nonRetryable: !err.retryable, cause: err });
}

/** The e-mail message id of a delivery: the same on every attempt, so a message sent twice reads as one. */
export function messageIdOf(deliveryId: string): string {
  return `<${deliveryId}@ameide>`;
}

/** The follow-up's notification steps. */
export function notificationActivities(
  deps: GovernanceDeps,
): Pick<FollowupActivities, 'prepareNotifications' | 'deliverNotification' | 'deadLetterNotification'> {
  const repo = new NotificationRepository(deps.db);
  const runs = new RunRepository(deps.db);
  const items = new WorkItemRepository(deps.db);
  const plans = new PlanRepository(deps.db);
  const previews = new PreviewRepository(deps.db);

  /** The work item's title: the backlog's, else the one the run's plan carries. */
  async function titleOf(run: RunRow, spec: { title?: unknown } | undefined): Promise<string> {
    if (typeof spec?.title === 'string' && spec.title) return spec.title;
    const workItemId = run.spec.workItemIds[0];
    if (!workItemId) return '';
    const plan = await plans.get(run.tenantId, run.planId);
    return plan?.spec.workItems?.find((w) => w.id === workItemId)?.title ?? '';
  }

  /** What the run's notifications are made from. */
  async function factsOf(run: RunRow, event: FollowupEvent, item: WorkItemPeople & { title?: unknown }): Promise<RunFacts> {
    const [evidence, impediment, preview] = await Promise.all([
      repo.evidenceOf(run.tenantId, run.id),
      event === 'finished' ? repo.impedimentOf(run.tenantId, run.id) : undefined,
      previews.get(run.tenantId, run.id),
    ]);
    // The summary has the URLs the worker reported with `preview_live` (a local preview's row has none: the router's).
    const summary = run.state.summary ?? {};
    const url = summary.previewUrl || preview?.url || '';
    return {
      run,
      title: await titleOf(run, item),
      evidence: evidence.map((e) => ({ kind: e.kind, name: e.name, uri: e.uri, sha256: e.sha256, sizeBytes: e.sizeBytes })),
      impediment: impediment && {
        id: impediment.id,
        cause: impediment.cause,
        reason: impediment.reason,
        phase: impediment.phase,
        handoffUri: impediment.handoffUri,
      },
      preview: url ? { url, aliasUrl: (summary.previewUrl ? summary.previewAliasUrl : preview?.aliasUrl) || '' } : undefined,
      previewLiveAt: preview?.liveAt ?? undefined,
      publicUrl: deps.notifications.publicUrl,
    };
  }

  /** One attempt to send a delivery; throws a DeliveryError. */
  async function send(work: DeliveryWork): Promise<void> {
    const { delivery, notification, subscription } = work;
    if (!subscription) throw new DeliveryError(false, 'the subscription was deleted');
    const content = notification.content as unknown as NotificationContent;
    switch (delivery.channel) {
      case 'webhook':
        await deliverWebhook({
          url: delivery.address,
          secret: subscription.secret,
          deliveryId: delivery.id,
          event: content.event,
          body: webhookPayload(content, delivery.id),
        });
        return;
      case 'email': {
        const smtpUrl = deps.notifications.smtpUrl;
        if (!smtpUrl) throw new DeliveryError(false, 'no SMTP server configured (AMEIDE_SMTP_URL)');
        const mail = renderEmail(content);
        const mailer = createMailer({ smtpUrl, from: deps.notifications.mailFrom });
        try {
          await mailer.send({
            to: delivery.address,
            subject: mail.subject,
            text: mail.text,
            html: mail.html,
            messageId: messageIdOf(delivery.id),
            headers: { 'X-Ameide-Event': content.event, 'X-Ameide-Delivery': delivery.id },
          });
        } finally {
          mailer.close();
        }
        return;
      }
      default:
        throw new DeliveryError(false, `deliveries over channel "${oneLine(delivery.channel, 40)}" are not supported`);
    }
  }

  return {
    /**
     * Creates the notifications of a run's event: one in-app notification per person and event (its
     * dedupe key `<runId>:<event>:<person>`), and one delivery per notification and matching webhook or
     * e-mail subscription. Idempotent: a repeat makes nothing new and returns the deliveries still to
     * make (neither delivered nor dead-lettered). Wakes this process's watchers of the people it told.
     */
    async prepareNotifications({ runId, tenantId, event }) {
      const run = isUuid(runId) ? await runs.get(tenantId, runId) : undefined;
      if (!run) throw ApplicationFailure.nonRetryable(`run ${runId} of tenant ${tenantId} does not exist`, 'RunNotFound');
      const workItemId = run.spec.workItemIds[0] ?? '';
      const item = workItemId ? await items.get(tenantId, workItemId) : undefined;
      const people = (item?.spec ?? {}) as WorkItemPeople & { title?: unknown };
      const facts = await factsOf(run, event, people);
      const events = eventsOf(event, facts);
      if (!events) throw ApplicationFailure.nonRetryable(`run ${runId} has not finished (${run.status})`, 'RunNotFinished');
      if (events.length === 0) return { deliveryIds: [] };

      const subscriptions = await repo.subscriptionsFor(tenantId, workItemId);
      const recipients = recipientsOf(people, subscriptions);
      const rows: NewNotification[] = [];
      for (const e of events) {
        const content = composeContent(e, facts);
        const mail = renderEmail(content);
        for (const person of recipients) {
          rows.push({
            tenantId,
            person,
            event: e,
            runId: run.id,
            workItemId,
            dedupeKey: `${run.id}:${e}:${person}`,
            subject: mail.subject,
            body: mail.text,
            content: content as unknown as Record<string, unknown>,
          });
        }
      }
      const stored = await repo.insertNotifications(tenantId, rows);
      const existing = await repo.deliveriesOf(
        tenantId,
        stored.rows.map((n) => n.id),
      );
      const deliveries: NewDelivery[] = [];
      for (const n of stored.rows) {
        const sent = existing.filter((d) => d.notificationId === n.id);
        for (const s of deliveriesFor(n.person, subscriptions)) {
          // One delivery per address: a subscription added since to an address that already has one adds none.
          if (sent.some((d) => d.subscriptionId !== s.id && d.channel === s.channel && d.address === s.address)) continue;
          deliveries.push({ tenantId, notificationId: n.id, subscriptionId: s.id, channel: s.channel, address: s.address });
        }
      }
      await repo.insertDeliveries(deliveries);
      const all = await repo.deliveriesOf(
        tenantId,
        stored.rows.map((n) => n.id),
      );
      const told = stored.rows.filter((n) => stored.created.has(n.id)).map((n) => n.person);
      announceNotifications(deps.events, tenantId, [...new Set(told)]);
      return { deliveryIds: all.filter((d) => !FINAL_DELIVERY_STATES.includes(d.state)).map((d) => d.id) };
    },

    /**
     * One attempt of one delivery. A delivery delivered or dead-lettered already is left alone (nothing
     * is sent twice). The attempt is counted before it is made; a failure is recorded (`failed`, its
     * error) and thrown: non-retryable when no attempt can succeed (the receiver refused the message, no
     * SMTP server is configured, the subscription is gone).
     */
    async deliverNotification({ deliveryId }) {
      const work = isUuid(deliveryId) ? await repo.deliveryWork(undefined, deliveryId) : undefined;
      if (!work) throw ApplicationFailure.nonRetryable(`delivery ${deliveryId} does not exist`, 'DeliveryNotFound');
      const { tenantId } = work.delivery;
      if (FINAL_DELIVERY_STATES.includes(work.delivery.state)) return;
      const attempt = await repo.startAttempt(tenantId, deliveryId);
      if (!attempt) return;
      try {
        await send({ ...work, delivery: attempt });
      } catch (err) {
        const failure =
          err instanceof DeliveryError ? err : new DeliveryError(true, oneLine(err instanceof Error ? err.message : String(err), 300), { cause: err });
        await repo.markFailed(tenantId, deliveryId, failure.message);
        throw deliveryFailure(failure);
      }
      await repo.markDelivered(tenantId, deliveryId);
    },

    /** Gives a delivery up after its last attempt: `dead_lettered` with the last error (a delivered one stays delivered). */
    async deadLetterNotification({ deliveryId, error }) {
      if (!isUuid(deliveryId)) return;
      await repo.deadLetter(undefined, deliveryId, oneLine(error, 1000));
    },
  };
}
