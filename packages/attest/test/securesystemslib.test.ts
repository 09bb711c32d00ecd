import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSigningKey, signStatement, slsaProvenance, statement, type DsseEnvelope, type SigningKey } from '../src/index.js';

/**
 * The format is standard: envelopes signed here are verified by an independent implementation,
 * securesystemslib's DSSE (Python, installed into the repository's tool venv by `make tools`), run
 * through test/verify_dsse.py.
 */
const root = fileURLToPath(new URL('../../..', import.meta.url));
const python = join(root, '.tools', 'venv', 'bin', 'python');
const verifier = fileURLToPath(new URL('./verify_dsse.py', import.meta.url));
const MAKE_TOOLS = 'securesystemslib[crypto] is not installed in .tools/venv: run `make tools`';

let dir: string;
let key: SigningKey;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'attest-py-'));
  key = loadSigningKey({ devKeyDir: join(dir, 'signing') });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const subjects = { 'run.patch': sha('the patch'), 'summary.json': sha('{"ok":true}') };
const provenance = slsaProvenance({
  builderId: 'https://ameide.dev/worker/w1',
  builderVersion: '0.1.0',
  buildType: 'https://ameide.dev/coding-agent-run/v1',
  externalParameters: { plan: { id: 'p1', version: 1, definition: { name: 'fix', version: 'ünïcødé ✓' } } },
  resolvedDependencies: [{ uri: 'git+https://example.com/repo.git', digest: { gitCommit: 'a'.repeat(40) } }],
  invocationId: 'run-1',
});

/** Runs the Python verifier on the envelope: its exit status and what it printed. */
function pythonVerify(envelope: DsseEnvelope): { status: number | null; out: string } {
  if (!existsSync(python)) throw new Error(`${python} does not exist: ${MAKE_TOOLS}`);
  const input = JSON.stringify({ envelope, publicKeyPem: key.publicKeyPem, keyid: key.keyid, predicateType: provenance.predicateType, subjects });
  const r = spawnSync(python, [verifier], { input, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  if (r.status === 3) throw new Error(`${MAKE_TOOLS} (${r.stdout.trim()})`);
  if (r.status !== 0 && r.status !== 1) throw new Error(`verify_dsse.py exited with ${r.status}: ${r.stdout}${r.stderr}`);
  return { status: r.status, out: r.stdout.trim() };
}

function signed(): DsseEnvelope {
  const st = statement(
    Object.entries(subjects).map(([name, sha256]) => ({ name, digest: { sha256 } })),
    provenance.predicateType,
    provenance.predicate,
  );
  return signStatement(st, key);
}

/** The envelope with one bit of its payload or signature flipped (still valid base64). */
function flip(env: DsseEnvelope, part: 'payload' | 'sig'): DsseEnvelope {
  const copy = structuredClone(env);
  const b = Buffer.from(part === 'payload' ? copy.payload : copy.signatures[0].sig, 'base64');
  b[part === 'payload' ? b.indexOf('run-1') + 4 : 0] ^= 1; // the payload stays JSON: "run-0"
  if (part === 'payload') copy.payload = b.toString('base64');
  else copy.signatures[0].sig = b.toString('base64');
  return copy;
}

describe('securesystemslib verifies our envelopes', () => {
  it('accepts the untampered envelope and finds the statement in it', () => {
    expect(pythonVerify(signed())).toEqual({ status: 0, out: 'verified' });
  });

  it('rejects a tampered payload', () => {
    const r = pythonVerify(flip(signed(), 'payload'));
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/^rejected: VerificationError: /);
  });

  it('rejects a tampered signature', () => {
    const r = pythonVerify(flip(signed(), 'sig'));
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/^rejected: VerificationError: /);
  });
});
