import { loadSigningKey, type SigningKey } from '@ameide/attest';
import type { ServiceConfig } from '@ameide/config';

/**
 * The key attestations are signed with (AMEIDE_SIGNING_KEY, AMEIDE_SIGNING_KEY_FILE, or the
 * development key kept under AMEIDE_HOME), loaded when the service starts so that a wrong key stops
 * it with one line, and the public keys GetSigningKeys publishes for verifiers.
 */
export class SigningKeys {
  private constructor(private readonly key: SigningKey) {}

  static load(cfg: ServiceConfig['signing']): SigningKeys {
    try {
      return new SigningKeys(loadSigningKey({ keyPem: cfg.keyPem, keyFile: cfg.keyFile, devKeyDir: cfg.devKeyDir }));
    } catch (err) {
      throw Object.assign(new Error((err as Error).message), { expected: true });
    }
  }

  current(): SigningKey {
    return this.key;
  }

  published(): { keyId: string; publicKeyPem: string; development: boolean }[] {
    return [{ keyId: this.key.keyid, publicKeyPem: this.key.publicKeyPem, development: this.key.development }];
  }
}
