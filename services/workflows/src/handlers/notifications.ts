import type { GovernanceDeps, GovernanceRoutes } from '../governance/deps.js';

/** The notification center, subscriptions, deliveries and their stats. */
export function notificationRoutes(_deps: GovernanceDeps): GovernanceRoutes {
  return {};
}
