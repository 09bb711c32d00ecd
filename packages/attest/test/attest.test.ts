import { createHash, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AttestationError,
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_TYPE,
  SLSA_PROVENANCE_TYPE,
  TEST_RESULT_TYPE,
  keyIdOf,
  loadSigningKey,
  pae,
  signStatement,
  slsaProvenance,
  statement,
  subjectsMatch,
  testResult,
  verifyEnvelope,
  type DsseEnvelope,
  type SigningKey,
  type TrustedKey,
} from '../src/index.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A fresh development key in a directory of its own. */
function devKey(): SigningKey {
  const dir = mkdtempSync(join(tmpdir(), 'attest-'));
  dirs.push(dir);
  return loadSigningKey({ devKeyDir: join(dir, 'signing') });
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const trust = (k: SigningKey): TrustedKey => ({ keyid: k.keyid, publicKeyPem: k.publicKeyPem });
const files = [
  { name: 'run.patch', sha256: sha('the patch') },
  { name: 'summary.json', sha256: sha('{"ok":true}') },
];
const subjects = files.map((f) => ({ name: f.name, digest: { sha256: f.sha256 } }));
const tests = testResult({
  result: 'PASSED',
  configuration: [{ name: 'definition.yaml', digest: { sha256: sha('def') } }],
  passedTests: ['unit > adds', 'unit > subtracts'],
  warnedTests: [],
  failedTests: [],
});

/** The envelope with its payload or signature bytes changed by `edit`. */
function tamper(env: DsseEnvelope, part: 'payload' | 'sig', edit: (b: Buffer) => void): DsseEnvelope {
  const copy = structuredClone(env);
  const b = Buffer.from(part === 'payload' ? copy.payload : copy.signatures[0].sig, 'base64');
  edit(b);
  if (part === 'payload') copy.payload = b.toString('base64');
  else copy.signatures[0].sig = b.toString('base64');
  return copy;
}

/** The message of the AttestationError that `f` throws. */
function rejection(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(AttestationError);
    return (e as Error).message;
  }
  throw new Error('expected an AttestationError, nothing was thrown');
}

/** An envelope of arbitrary payload bytes, correctly signed, for the payload checks after the signature. */
function signedBytes(payload: Buffer, key: SigningKey): DsseEnvelope {
  const sig = sign(null, pae(IN_TOTO_PAYLOAD_TYPE, payload), key.privateKey);
  return { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: payload.toString('base64'), signatures: [{ keyid: key.keyid, sig: sig.toString('base64') }] };
}

describe('DSSE', () => {
  it('encodes PAE as the DSSE v1 protocol test vector', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world');
    // LEN counts bytes, not characters.
    expect(pae('t/é', Buffer.from('€')).toString()).toBe('DSSEv1 4 t/é 3 €');
  });

  it('signs a statement and verifies it back', () => {
    const key = devKey();
    const st = statement(subjects, tests.predicateType, tests.predicate);
    const env = signStatement(st, key);
    expect(env.payloadType).toBe(IN_TOTO_PAYLOAD_TYPE);
    expect(env.signatures).toEqual([{ keyid: key.keyid, sig: expect.any(String) }]);
    expect(Buffer.from(env.signatures[0].sig, 'base64')).toHaveLength(64);
    const verified = verifyEnvelope(env, [trust(devKey()), trust(key)]);
    expect(verified).toEqual(st);
    expect(verified._type).toBe(IN_TOTO_STATEMENT_TYPE);
    expect(verified.predicateType).toBe(TEST_RESULT_TYPE);
    expect(subjectsMatch(verified, files)).toEqual([]);
  });

  it('serialises the payload stably: sorted keys, the same bytes for the same statement', () => {
    const key = devKey();
    const a = signStatement(statement(subjects, 'https://example.com/p', { b: 1, a: { d: 2, c: [3, { f: 4, e: 5 }] } }), key);
    const b = signStatement(statement(subjects, 'https://example.com/p', { a: { c: [3, { e: 5, f: 4 }], d: 2 }, b: 1 }), key);
    expect(a).toEqual(b);
    const json = Buffer.from(a.payload, 'base64').toString();
    expect(json.startsWith('{"_type":"https://in-toto.io/Statement/v1","predicate":{"a":{"c":[3,{"e":5,"f":4}],"d":2},"b":1},"predicateType"')).toBe(true);
  });

  it('verifies URL-safe base64 too, as DSSE requires', () => {
    const key = devKey();
    const env = signStatement(statement(subjects, tests.predicateType, tests.predicate), key);
    const urlSafe = (s: string) => Buffer.from(s, 'base64').toString('base64url');
    const st = verifyEnvelope({ ...env, payload: urlSafe(env.payload), signatures: [{ keyid: key.keyid, sig: urlSafe(env.signatures[0].sig) }] }, [trust(key)]);
    expect(st.subject).toEqual(subjects);
  });

  describe('rejects', () => {
    const key = devKey();
    const env = signStatement(statement(subjects, tests.predicateType, tests.predicate), key);
    const trusted = [trust(key)];
    const badSignature = `bad signature: the signature by keyid ${key.keyid} does not match the payload`;

    it('a changed byte in the payload', () => {
      const changed = tamper(env, 'payload', (b) => {
        const i = b.indexOf('PASSED');
        b[i] = 'F'.charCodeAt(0); // still JSON: "FASSED"
      });
      expect(JSON.parse(Buffer.from(changed.payload, 'base64').toString())).toBeTruthy();
      expect(rejection(() => verifyEnvelope(changed, trusted))).toBe(badSignature);
    });

    it('a changed byte in the signature', () => {
      expect(
        rejection(() =>
          verifyEnvelope(
            tamper(env, 'sig', (b) => (b[10] ^= 1)),
            trusted,
          ),
        ),
      ).toBe(badSignature);
    });

    it('a swapped payloadType', () => {
      expect(rejection(() => verifyEnvelope({ ...env, payloadType: 'application/json' }, trusted))).toBe(
        'wrong payloadType "application/json": expected "application/vnd.in-toto+json"',
      );
      // The type is signed too: the signature does not verify for another type.
      const payload = Buffer.from(env.payload, 'base64');
      const sig = Buffer.from(env.signatures[0].sig, 'base64');
      expect(verify(null, pae(IN_TOTO_PAYLOAD_TYPE, payload), createPublicKey(key.publicKeyPem), sig)).toBe(true);
      expect(verify(null, pae('application/json', payload), createPublicKey(key.publicKeyPem), sig)).toBe(false);
    });

    it('an untrusted key, naming the keyids', () => {
      const stranger = devKey();
      expect(rejection(() => verifyEnvelope(env, [trust(stranger)]))).toBe(
        `no signature by a trusted key: signed by keyid ${key.keyid}; trusted keyid ${stranger.keyid}`,
      );
      expect(rejection(() => verifyEnvelope(env, []))).toBe(`no signature by a trusted key: signed by keyid ${key.keyid}; trusted keyid (none)`);
    });

    it('a signature made by another key under the trusted keyid', () => {
      const forged = signedBytes(Buffer.from(env.payload, 'base64'), devKey());
      forged.signatures[0].keyid = key.keyid;
      expect(rejection(() => verifyEnvelope(forged, trusted))).toBe(badSignature);
    });

    it('non-base64 payload and signature', () => {
      expect(rejection(() => verifyEnvelope({ ...env, payload: `${env.payload.slice(0, 8)}!${env.payload.slice(9)}` }, trusted))).toBe(
        'payload is not valid base64',
      );
      expect(rejection(() => verifyEnvelope({ ...env, payload: ` ${env.payload}` }, trusted))).toBe('payload is not valid base64');
      expect(rejection(() => verifyEnvelope({ ...env, signatures: [{ keyid: key.keyid, sig: `${env.signatures[0].sig}\n` }] }, trusted))).toBe(
        `bad signature: the signature by keyid ${key.keyid} is not valid base64`,
      );
    });

    it('an envelope without signatures', () => {
      expect(rejection(() => verifyEnvelope({ ...env, signatures: [] }, trusted))).toBe('the envelope has no signatures');
    });

    it('a signed payload that is not JSON', () => {
      expect(rejection(() => verifyEnvelope(signedBytes(Buffer.from('not json'), key), trusted))).toMatch(/^payload is not JSON: /);
      expect(rejection(() => verifyEnvelope(signedBytes(Buffer.from([0x22, 0xff, 0x22]), key), trusted))).toMatch(/^payload is not JSON: /);
    });

    it('a signed payload that is not an in-toto Statement v1', () => {
      const st = statement(subjects, tests.predicateType, tests.predicate);
      const of = (v: unknown) => rejection(() => verifyEnvelope(signedBytes(Buffer.from(JSON.stringify(v)), key), trusted));
      expect(of([1])).toBe('payload is not an in-toto Statement v1: not a JSON object');
      expect(of({ ...st, _type: 'https://in-toto.io/Statement/v0.1' })).toBe(
        'payload is not an in-toto Statement v1: _type is "https://in-toto.io/Statement/v0.1", expected "https://in-toto.io/Statement/v1"',
      );
      expect(of({ ...st, subject: [] })).toBe('payload is not an in-toto Statement v1: subject must be a non-empty list');
      expect(of({ ...st, subject: [{ name: 'x' }] })).toBe('payload is not an in-toto Statement v1: subject[0].digest must be a non-empty object');
      expect(of({ ...st, predicateType: 7 })).toBe('payload is not an in-toto Statement v1: predicateType must be a non-empty string');
      expect(of({ ...st, predicate: 'x' })).toBe('payload is not an in-toto Statement v1: predicate is not an object');
    });

    it('a trusted key whose keyid is not its own', () => {
      const other = devKey();
      expect(rejection(() => verifyEnvelope(env, [{ keyid: key.keyid, publicKeyPem: other.publicKeyPem }]))).toBe(
        `trusted key ${key.keyid} has keyid ${other.keyid}: the keyid is the SHA-256 of the key's SPKI DER`,
      );
    });
  });
});

describe('subjectsMatch', () => {
  const st = statement(subjects, tests.predicateType, tests.predicate);

  it('catches a changed digest and a missing subject', () => {
    expect(
      subjectsMatch(st, [
        { name: 'run.patch', sha256: sha('another patch') },
        { name: 'summary.json', sha256: files[1].sha256 },
        { name: 'report.xml', sha256: sha('report') },
      ]),
    ).toEqual([
      `subject "run.patch": digest differs (attested sha256 ${files[0].sha256}, the file's is ${sha('another patch')})`,
      'subject "report.xml" is missing from the attestation',
    ]);
  });

  it('accepts a subset of the subjects, and upper-case hex', () => {
    expect(subjectsMatch(st, [{ name: 'summary.json', sha256: files[1].sha256.toUpperCase() }])).toEqual([]);
  });
});

describe('statement', () => {
  it('refuses subjects without a proper sha256', () => {
    expect(() => statement([], 'p', {})).toThrow('a statement needs at least one subject');
    expect(() => statement([{ name: 'x', digest: { sha256: 'abc' } }], 'p', {})).toThrow('subject "x": sha256 must be 64 lowercase hex digits (got "abc")');
  });
});

describe('keyIdOf', () => {
  it('is the hex SHA-256 of the SPKI DER of the public key', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const der = publicKey.export({ type: 'spki', format: 'der' });
    expect(keyIdOf(pem)).toBe(createHash('sha256').update(der).digest('hex'));
    expect(keyIdOf(pem)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('predicates', () => {
  it('builds SLSA Provenance v1', () => {
    const p = slsaProvenance({
      builderId: 'https://ameide.dev/worker/w1',
      builderVersion: '0.1.0',
      buildType: 'https://ameide.dev/coding-agent-run/v1',
      externalParameters: { plan: { id: 'p1', version: 2 } },
      resolvedDependencies: [{ uri: 'git+https://example.com/repo.git', digest: { gitCommit: 'a'.repeat(40) } }],
      invocationId: 'run-1',
      startedOn: '2026-01-01T00:00:00Z',
      byproducts: [{ name: 'log', mediaType: 'text/plain' }],
    });
    expect(p).toEqual({
      predicateType: SLSA_PROVENANCE_TYPE,
      predicate: {
        buildDefinition: {
          buildType: 'https://ameide.dev/coding-agent-run/v1',
          externalParameters: { plan: { id: 'p1', version: 2 } },
          resolvedDependencies: [{ uri: 'git+https://example.com/repo.git', digest: { gitCommit: 'a'.repeat(40) } }],
        },
        runDetails: {
          builder: { id: 'https://ameide.dev/worker/w1', version: { 'ameide-worker': '0.1.0' } },
          metadata: { invocationId: 'run-1', startedOn: '2026-01-01T00:00:00Z' },
          byproducts: [{ name: 'log', mediaType: 'text/plain' }],
        },
      },
    });
  });

  it('builds an in-toto Test Result v0.1', () => {
    expect(
      testResult({ result: 'FAILED', configuration: [{ name: 'c' }], url: 'https://x/run/1', passedTests: ['a'], warnedTests: [], failedTests: ['b'] }),
    ).toEqual({
      predicateType: TEST_RESULT_TYPE,
      predicate: { result: 'FAILED', configuration: [{ name: 'c' }], url: 'https://x/run/1', passedTests: ['a'], warnedTests: [], failedTests: ['b'] },
    });
  });
});
