import type { GovernanceDeps, GovernanceRoutes } from '../governance/deps.js';

/** ListImpediments, GetImpediment, ResolveImpediment, ReassignImpediment. */
export function impedimentRoutes(_deps: GovernanceDeps): GovernanceRoutes {
  return {};
}
