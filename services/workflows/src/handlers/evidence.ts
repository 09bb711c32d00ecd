import type { GovernanceDeps, GovernanceRoutes } from '../governance/deps.js';
import type { SigningKeys } from '../governance/signing.js';

/** ListEvidence and GetSigningKeys. */
export function evidenceRoutes(_deps: GovernanceDeps, _signing?: SigningKeys): GovernanceRoutes {
  return {};
}
