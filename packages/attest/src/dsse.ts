import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { AttestationError } from './errors.js';
import { keyIdOf, type SigningKey, type TrustedKey } from './keys.js';
import { IN_TOTO_PAYLOAD_TYPE, parseStatement, type Statement } from './statement.js';

/** A DSSE signature: the signing key's id (a hint, not trusted) and the ed25519 signature, base64. */
export interface DsseSignature {
  keyid: string;
  sig: string;
}

/** A DSSE JSON envelope (secure-systems-lab/dsse, envelope.md): the payload in base64 and its signatures. */
export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: DsseSignature[];
}

/**
 * DSSE v1 Pre-Authentication Encoding, the bytes that are signed:
 * `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, LEN being the decimal byte length. Signing
 * the type with the body means a payload cannot be passed off as another type.
 */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/**
 * Signs the statement into a DSSE envelope with the key (ed25519). The payload is the statement's
 * JSON with object keys sorted, so the same statement always gives the same bytes; verifiers check
 * those exact bytes and never re-serialise.
 */
export function signStatement(st: Statement, key: SigningKey): DsseEnvelope {
  const payload = Buffer.from(canonicalJson(st), 'utf8');
  const sig = sign(null, pae(IN_TOTO_PAYLOAD_TYPE, payload), key.privateKey);
  return { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: payload.toString('base64'), signatures: [{ keyid: key.keyid, sig: sig.toString('base64') }] };
}

/**
 * Verifies the envelope and returns its statement. It must carry the in-toto payloadType and a valid
 * ed25519 signature by one of the `trusted` keys over the exact payload bytes, and the payload must
 * be an in-toto Statement v1. Signatures are matched to keys by keyid (a signature without one is
 * tried against every trusted key). Throws an AttestationError saying what failed.
 */
export function verifyEnvelope(env: DsseEnvelope, trusted: TrustedKey[]): Statement {
  const e = env as unknown as Record<string, unknown> | null;
  if (typeof e !== 'object' || e === null) throw new AttestationError('not a DSSE envelope: not a JSON object');
  if (typeof e.payloadType !== 'string') throw new AttestationError('not a DSSE envelope: payloadType is missing');
  if (typeof e.payload !== 'string') throw new AttestationError('not a DSSE envelope: payload is missing');
  if (!Array.isArray(e.signatures)) throw new AttestationError('not a DSSE envelope: signatures is missing');
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw new AttestationError(`wrong payloadType ${JSON.stringify(env.payloadType)}: expected "${IN_TOTO_PAYLOAD_TYPE}"`);
  }
  const payload = decodeBase64(env.payload);
  if (!payload) throw new AttestationError('payload is not valid base64');
  if (env.signatures.length === 0) throw new AttestationError('the envelope has no signatures');

  const keys = trusted.map(trustedKey);
  const signedBy = env.signatures.map((s) => (typeof s?.keyid === 'string' && s.keyid !== '' ? s.keyid : '(no keyid)'));
  const attempts = env.signatures.flatMap((s) => {
    const keyid = typeof s?.keyid === 'string' ? s.keyid : '';
    return keys.filter((k) => keyid === '' || k.keyid === keyid).map((k) => ({ key: k, sig: s?.sig }));
  });
  if (attempts.length === 0) {
    throw new AttestationError(
      `no signature by a trusted key: signed by keyid ${signedBy.join(', ')}; trusted keyid ${keys.map((k) => k.keyid).join(', ') || '(none)'}`,
    );
  }
  const signed = pae(env.payloadType, payload);
  const failures: string[] = [];
  for (const { key, sig } of attempts) {
    const bytes = typeof sig === 'string' ? decodeBase64(sig) : undefined;
    if (!bytes) failures.push(`the signature by keyid ${key.keyid} is not valid base64`);
    else if (!verify(null, signed, key.publicKey, bytes)) failures.push(`the signature by keyid ${key.keyid} does not match the payload`);
    else return parsePayload(payload);
  }
  throw new AttestationError(`bad signature: ${failures.join('; ')}`);
}

/** The statement in a verified payload: strict UTF-8, JSON, then the in-toto Statement v1 shape. */
function parsePayload(payload: Buffer): Statement {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch (e) {
    throw new AttestationError(`payload is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  return parseStatement(value);
}

/** A trusted key, checked: an ed25519 public key whose keyid is `keyIdOf` it. */
function trustedKey(k: TrustedKey): { keyid: string; publicKey: KeyObject } {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(k.publicKeyPem);
  } catch {
    throw new AttestationError(`trusted key ${k.keyid} is not a PEM public key`);
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new AttestationError(`trusted key ${k.keyid} is not an ed25519 key (${publicKey.asymmetricKeyType})`);
  const actual = keyIdOf(k.publicKeyPem);
  if (actual !== k.keyid) throw new AttestationError(`trusted key ${k.keyid} has keyid ${actual}: the keyid is the SHA-256 of the key's SPKI DER`);
  return { keyid: k.keyid, publicKey };
}

const STANDARD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const URL_SAFE_BASE64 = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}(?:==)?|[A-Za-z0-9_-]{3}=?)?$/;

/**
 * Strict base64: standard (padded) or URL-safe (padding optional), the two alphabets DSSE allows,
 * in canonical form (unused trailing bits zero); anything else, including whitespace, is undefined.
 * (Buffer.from(…, 'base64') alone skips invalid characters silently.)
 */
export function decodeBase64(s: string): Buffer | undefined {
  if (STANDARD_BASE64.test(s)) {
    const bytes = Buffer.from(s, 'base64');
    return bytes.toString('base64') === s ? bytes : undefined;
  }
  if (URL_SAFE_BASE64.test(s)) {
    const bytes = Buffer.from(s, 'base64url');
    return bytes.toString('base64url') === s.replace(/=+$/, '') ? bytes : undefined;
  }
  return undefined;
}

/** JSON with every object's keys sorted (arrays keep their order): stable bytes for the same value. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
