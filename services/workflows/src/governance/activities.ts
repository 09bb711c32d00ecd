import type { FollowupActivities } from '@ameide/temporal';
import { impedimentActivities } from '../impediments/activities.js';
import { notificationActivities } from '../notifications/activities.js';
import type { GovernanceDeps } from './deps.js';
import { evidenceActivities } from './evidence.js';
import type { SigningKeys } from './signing.js';

/** Every activity of the follow-up workflow (`runFollowup`), served by this process. */
export function createFollowupActivities(deps: GovernanceDeps, signing: SigningKeys): FollowupActivities {
  return {
    ...evidenceActivities(deps, () => signing.current()),
    ...impedimentActivities(deps),
    ...notificationActivities(deps),
  };
}
