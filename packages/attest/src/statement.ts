import { AttestationError } from './errors.js';

/** `_type` of an in-toto Statement v1 (in-toto attestation spec, spec/v1/statement.md). */
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/** The DSSE `payloadType` of an in-toto Statement. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** `predicateType` of SLSA Provenance v1 (see `slsaProvenance`). */
export const SLSA_PROVENANCE_TYPE = 'https://slsa.dev/provenance/v1';
/** `predicateType` of the in-toto Test Result predicate v0.1 (see `testResult`). */
export const TEST_RESULT_TYPE = 'https://in-toto.io/attestation/test-result/v0.1';

/** An artifact the statement is about: its name and the hex SHA-256 of its bytes. */
export interface Subject {
  name: string;
  digest: { sha256: string };
}

/** An in-toto Statement v1: what is attested (`predicate`, of `predicateType`) about which artifacts (`subject`). */
export interface Statement {
  _type: string;
  subject: Subject[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** An in-toto Statement v1 about `subjects`; each subject needs a name and a lowercase hex SHA-256. */
export function statement(subjects: Subject[], predicateType: string, predicate: Record<string, unknown>): Statement {
  if (subjects.length === 0) throw new AttestationError('a statement needs at least one subject');
  for (const s of subjects) {
    if (!s.name) throw new AttestationError('every subject needs a name');
    if (!SHA256_HEX.test(s.digest.sha256)) throw new AttestationError(`subject "${s.name}": sha256 must be 64 lowercase hex digits (got "${s.digest.sha256}")`);
  }
  if (!predicateType) throw new AttestationError('a statement needs a predicateType');
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: subjects.map((s) => ({ name: s.name, digest: { sha256: s.digest.sha256 } })),
    predicateType,
    predicate,
  };
}

/**
 * Checks that the statement covers `files`: each file must be a subject of the same name with the
 * same SHA-256. Returns the problems, one line each (empty: all match). Subjects that are not among
 * `files` are not problems: an attestation may cover more than the caller has at hand.
 */
export function subjectsMatch(st: Statement, files: { name: string; sha256: string }[]): string[] {
  const problems: string[] = [];
  for (const f of files) {
    const subject = st.subject.find((s) => s.name === f.name);
    if (!subject) {
      problems.push(`subject "${f.name}" is missing from the attestation`);
      continue;
    }
    const attested = subject.digest.sha256 as string | undefined;
    if (attested === undefined) problems.push(`subject "${f.name}" has no sha256 digest in the attestation`);
    else if (attested.toLowerCase() !== f.sha256.toLowerCase()) {
      problems.push(`subject "${f.name}": digest differs (attested sha256 ${attested}, the file's is ${f.sha256})`);
    }
  }
  return problems;
}

/**
 * The payload's statement, checked against the in-toto Statement v1 shape (a verified payload may
 * come from any producer): `_type`, a non-empty `subject` list whose entries have a `digest` of
 * strings (and a string `name` when set), a `predicateType`, and an object `predicate` when set
 * (unset is the same as empty, per the spec).
 */
export function parseStatement(value: unknown): Statement {
  const fail = (why: string) => new AttestationError(`payload is not an in-toto Statement v1: ${why}`);
  if (!isObject(value)) throw fail('not a JSON object');
  if (value._type !== IN_TOTO_STATEMENT_TYPE) throw fail(`_type is ${JSON.stringify(value._type)}, expected "${IN_TOTO_STATEMENT_TYPE}"`);
  const subjects = value.subject;
  if (!Array.isArray(subjects) || subjects.length === 0) throw fail('subject must be a non-empty list');
  subjects.forEach((s: unknown, i) => {
    if (!isObject(s)) throw fail(`subject[${i}] is not an object`);
    if (s.name !== undefined && typeof s.name !== 'string') throw fail(`subject[${i}].name is not a string`);
    if (!isObject(s.digest) || Object.keys(s.digest).length === 0) throw fail(`subject[${i}].digest must be a non-empty object`);
    for (const [alg, hex] of Object.entries(s.digest)) if (typeof hex !== 'string') throw fail(`subject[${i}].digest.${alg} is not a string`);
  });
  if (typeof value.predicateType !== 'string' || value.predicateType === '') throw fail('predicateType must be a non-empty string');
  if (value.predicate !== undefined && !isObject(value.predicate)) throw fail('predicate is not an object');
  return { ...value, predicate: value.predicate ?? {} } as unknown as Statement;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
