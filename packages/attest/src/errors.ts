/** An attestation that does not verify, or a statement that cannot be built; the message says exactly what failed. */
export class AttestationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AttestationError';
  }
}
