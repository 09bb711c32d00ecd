import type { FollowupActivities } from '@ameide/temporal';
import type { GovernanceDeps } from '../governance/deps.js';

/** The follow-up's impediment step. */
export function impedimentActivities(_deps: GovernanceDeps): Pick<FollowupActivities, 'raiseImpediment'> {
  return { raiseImpediment: () => Promise.resolve({}) };
}
