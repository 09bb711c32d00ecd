/** The keys attestations are signed with: the current one, and the public keys GetSigningKeys publishes. */
export interface SigningKeys {
  published: { keyId: string; publicKeyPem: string; development: boolean }[];
}
