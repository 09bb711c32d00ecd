/**
 * Signed attestations: in-toto Statements v1 (SLSA Provenance v1, in-toto Test Result v0.1) in DSSE
 * envelopes signed with ed25519, using node:crypto only. The workflow service signs them; the
 * `ameide` CLI verifies them.
 */
export { AttestationError } from './errors.js';
export { keyIdOf, loadSigningKey, type SigningKey, type TrustedKey } from './keys.js';
export {
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_TYPE,
  SLSA_PROVENANCE_TYPE,
  TEST_RESULT_TYPE,
  statement,
  subjectsMatch,
  type Statement,
  type Subject,
} from './statement.js';
export { pae, signStatement, verifyEnvelope, type DsseEnvelope, type DsseSignature } from './dsse.js';
export { slsaProvenance, testResult, type ProvenanceInput, type TestResultInput } from './predicates.js';
