import type { FollowupActivities } from '@ameide/temporal';
import type { GovernanceDeps } from '../governance/deps.js';

/** The follow-up's notification steps. */
export function notificationActivities(
  _deps: GovernanceDeps,
): Pick<FollowupActivities, 'prepareNotifications' | 'deliverNotification' | 'deadLetterNotification'> {
  return {
    prepareNotifications: () => Promise.resolve({ deliveryIds: [] }),
    deliverNotification: () => Promise.resolve(),
    deadLetterNotification: () => Promise.resolve(),
  };
}
