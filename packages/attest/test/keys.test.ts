import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { keyIdOf, loadSigningKey } from '../src/index.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'attest-keys-'));
  dirs.push(dir);
  return dir;
}

const ed25519Pem = () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const p256Pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString();

/** The message of the error `f` throws. */
function thrown(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error, nothing was thrown');
}

describe('loadSigningKey', () => {
  it('creates a development key once (0600 in a 0700 directory) and reuses it', () => {
    const devKeyDir = join(tempDir(), 'home', 'signing');
    const first = loadSigningKey({ devKeyDir });
    expect(first.development).toBe(true);
    expect(first.source).toBe(`development key ${join(devKeyDir, 'signing-key.pem')}`);
    expect(statSync(devKeyDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(devKeyDir, 'signing-key.pem')).mode & 0o777).toBe(0o600);
    expect(readdirSync(devKeyDir)).toEqual(['signing-key.pem']);
    expect(first.privateKey.asymmetricKeyType).toBe('ed25519');
    expect(first.keyid).toBe(keyIdOf(first.publicKeyPem));

    const pem = readFileSync(join(devKeyDir, 'signing-key.pem'), 'utf8');
    const second = loadSigningKey({ devKeyDir });
    expect(second.keyid).toBe(first.keyid);
    expect(second.publicKeyPem).toBe(first.publicKeyPem);
    expect(readFileSync(join(devKeyDir, 'signing-key.pem'), 'utf8')).toBe(pem);
  });

  it('ends with one development key when two processes create it at once', async () => {
    const devKeyDir = join(tempDir(), 'signing');
    const src = new URL('../src/index.ts', import.meta.url).href;
    // Both processes wait for the same moment, then load (and so create) the key.
    const script = `
      import { loadSigningKey } from '${src}';
      const [dir, at] = process.argv.slice(1);
      while (Date.now() < Number(at)) {}
      process.stdout.write(loadSigningKey({ devKeyDir: dir }).keyid);`;
    const at = String(Date.now() + 2_000);
    const load = () =>
      new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, devKeyDir, at], {
          cwd: root,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('error', reject);
        p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`the key loader exited with ${code}: ${err}`))));
      });
    const keyids = await Promise.all([load(), load()]);
    expect(keyids[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(keyids[1]).toBe(keyids[0]);
    expect(readdirSync(devKeyDir)).toEqual(['signing-key.pem']);
    expect(loadSigningKey({ devKeyDir }).keyid).toBe(keyids[0]);
  }, 30_000);

  it('uses a configured ed25519 key, from AMEIDE_SIGNING_KEY or AMEIDE_SIGNING_KEY_FILE', () => {
    const devKeyDir = join(tempDir(), 'signing');
    const pem = ed25519Pem();
    const fromEnv = loadSigningKey({ keyPem: pem, devKeyDir });
    expect(fromEnv).toMatchObject({ development: false, source: 'AMEIDE_SIGNING_KEY' });
    const file = join(tempDir(), 'key.pem');
    writeFileSync(file, pem);
    const fromFile = loadSigningKey({ keyFile: file, devKeyDir });
    expect(fromFile).toMatchObject({ development: false, source: file, keyid: fromEnv.keyid });
    expect(() => statSync(devKeyDir)).toThrow(/ENOENT/); // no development key was made
  });

  it('refuses a key that is not ed25519, naming the setting', () => {
    const devKeyDir = join(tempDir(), 'signing');
    const rsa = thrown(() => loadSigningKey({ keyPem: rsaPem, devKeyDir }));
    expect(rsa).toBe('Invalid setting AMEIDE_SIGNING_KEY: must be an ed25519 private key (PEM, PKCS8, unencrypted) (got a key of type rsa)');
    expect(rsa).not.toContain('PRIVATE KEY-----');

    const file = join(tempDir(), 'p256.pem');
    writeFileSync(file, p256Pem);
    expect(thrown(() => loadSigningKey({ keyFile: file, devKeyDir }))).toBe(
      `Invalid setting AMEIDE_SIGNING_KEY_FILE: ${file} must hold an ed25519 private key (PEM, PKCS8, unencrypted) (got a key of type ec)`,
    );

    expect(thrown(() => loadSigningKey({ keyPem: 'not a key', devKeyDir }))).toMatch(
      /^Invalid setting AMEIDE_SIGNING_KEY: must be an ed25519 private key \(PEM, PKCS8, unencrypted\) \(not a readable PEM private key: /,
    );
    const publicOnly = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(thrown(() => loadSigningKey({ keyPem: publicOnly, devKeyDir }))).toMatch(/^Invalid setting AMEIDE_SIGNING_KEY: .*not a readable PEM private key/);
    expect(thrown(() => loadSigningKey({ keyFile: join(tempDir(), 'missing.pem'), devKeyDir }))).toMatch(
      /^Invalid setting AMEIDE_SIGNING_KEY_FILE: cannot read .*missing\.pem \(ENOENT/,
    );
    expect(thrown(() => loadSigningKey({ keyPem: ed25519Pem(), keyFile: file, devKeyDir }))).toBe(
      'Invalid setting AMEIDE_SIGNING_KEY: set either AMEIDE_SIGNING_KEY or AMEIDE_SIGNING_KEY_FILE, not both',
    );
  });

  it('refuses a development key file that is not an ed25519 key, saying what to do', () => {
    const devKeyDir = tempDir();
    writeFileSync(join(devKeyDir, 'signing-key.pem'), rsaPem, { mode: 0o600 });
    expect(thrown(() => loadSigningKey({ devKeyDir }))).toBe(
      `the development signing key ${join(devKeyDir, 'signing-key.pem')} is not an ed25519 private key (PEM, PKCS8, unencrypted) (got a key of type rsa): remove it to have a new one created, or set AMEIDE_SIGNING_KEY or AMEIDE_SIGNING_KEY_FILE`,
    );
  });
});
