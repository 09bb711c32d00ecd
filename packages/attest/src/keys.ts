import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** The key that signs attestations (see `loadSigningKey`). */
export interface SigningKey {
  /** `keyIdOf(publicKeyPem)`: the `keyid` of the envelopes' signatures. */
  keyid: string;
  privateKey: KeyObject;
  /** The public half as PEM (SPKI): what verifiers trust. */
  publicKeyPem: string;
  /** A development key (no key was configured): attestations it signs are for development only. */
  development: boolean;
  /** Where the key came from: `AMEIDE_SIGNING_KEY`, the key file's path, or `development key <path>`. */
  source: string;
}

/** A public key a verifier trusts. */
export interface TrustedKey {
  keyid: string;
  /** An ed25519 public key, PEM (SPKI). */
  publicKeyPem: string;
}

/** The development key's file name in `devKeyDir`. */
export const DEV_KEY_FILE = 'signing-key.pem';

const ED25519_PKCS8 = 'an ed25519 private key (PEM, PKCS8, unencrypted)';

/**
 * The keyid of a public key: the lowercase hex SHA-256 of its DER-encoded SubjectPublicKeyInfo (the
 * bytes inside `-----BEGIN PUBLIC KEY-----`). It depends only on the key, not on how its PEM is
 * wrapped, and anyone holding the public key can recompute it (`openssl pkey -pubin -outform DER |
 * sha256sum`). DSSE keyids are only hints; a verifier still checks the signature with the key.
 */
export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

/**
 * The key that signs attestations. `keyPem` (AMEIDE_SIGNING_KEY) or `keyFile`
 * (AMEIDE_SIGNING_KEY_FILE) must be an ed25519 private key; an error names the setting when it is
 * not. With neither, a development key at `<devKeyDir>/signing-key.pem`, created on first use
 * (directory 0700, file 0600) and marked `development`.
 */
export function loadSigningKey(o: { keyPem?: string; keyFile?: string; devKeyDir: string }): SigningKey {
  if (o.keyPem !== undefined && o.keyFile !== undefined) {
    throw new Error('Invalid setting AMEIDE_SIGNING_KEY: set either AMEIDE_SIGNING_KEY or AMEIDE_SIGNING_KEY_FILE, not both');
  }
  if (o.keyPem !== undefined) {
    const key = parseEd25519(o.keyPem, (why) => `Invalid setting AMEIDE_SIGNING_KEY: must be ${ED25519_PKCS8} (${why})`);
    return fromPrivateKey(key, { development: false, source: 'AMEIDE_SIGNING_KEY' });
  }
  if (o.keyFile !== undefined) {
    const file = o.keyFile;
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`Invalid setting AMEIDE_SIGNING_KEY_FILE: cannot read ${file} (${errorText(e)})`);
    }
    const key = parseEd25519(pem, (why) => `Invalid setting AMEIDE_SIGNING_KEY_FILE: ${file} must hold ${ED25519_PKCS8} (${why})`);
    return fromPrivateKey(key, { development: false, source: file });
  }
  return loadDevKey(o.devKeyDir);
}

/**
 * The development key in `dir`, created when missing. Creation is atomic: the key is written to a
 * temporary file of its own and hard-linked to its name, which fails when the name exists, so
 * processes starting at once all end up with the one key that was linked first (a rename would let
 * a later process replace a key an earlier one already uses).
 */
function loadDevKey(dir: string): SigningKey {
  const file = join(dir, DEV_KEY_FILE);
  const source = `development key ${file}`;
  const invalid = (why: string) =>
    `the development signing key ${file} is not ${ED25519_PKCS8} (${why}): remove it to have a new one created, or set AMEIDE_SIGNING_KEY or AMEIDE_SIGNING_KEY_FILE`;
  const existing = readIfExists(file);
  if (existing !== undefined) return fromPrivateKey(parseEd25519(existing, invalid), { development: true, source });

  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = join(dir, `.${DEV_KEY_FILE}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600); // whatever the umask
    writeSync(fd, pem);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
    return fromPrivateKey(privateKey, { development: true, source });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Another process created the key first: use that one.
    return fromPrivateKey(parseEd25519(readFileSync(file, 'utf8'), invalid), { development: true, source });
  } finally {
    unlinkSync(tmp);
  }
}

/** The file's text, or undefined when it does not exist. */
function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Parses an unencrypted PKCS8 PEM ed25519 private key; `fail(why)` makes the message of the error thrown otherwise. */
function parseEd25519(pem: string, fail: (why: string) => string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    throw new Error(fail(`not a readable PEM private key: ${errorText(e)}`));
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(fail(`got a key of type ${key.asymmetricKeyType ?? 'unknown'}`));
  if (!/^-----BEGIN PRIVATE KEY-----$/m.test(pem)) throw new Error(fail('not PKCS8: expected a "-----BEGIN PRIVATE KEY-----" block'));
  return key;
}

function fromPrivateKey(privateKey: KeyObject, o: { development: boolean; source: string }): SigningKey {
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { keyid: keyIdOf(publicKeyPem), privateKey, publicKeyPem, ...o };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
