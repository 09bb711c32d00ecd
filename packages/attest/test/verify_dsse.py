"""Independent verifier of @ameide/attest's envelopes, with securesystemslib (not our code).

Reads one JSON document on stdin:
  {"envelope": <DSSE envelope>, "publicKeyPem": "...", "keyid": "...",
   "predicateType": "...", "subjects": {"<name>": "<sha256>", ...}}
verifies the envelope's signature with securesystemslib's DSSE implementation and an ed25519 key
built from the public key, then checks the payload: an in-toto Statement v1 with that predicateType
and those subject digests. It also recomputes the keyid (the hex SHA-256 of the key's SPKI DER).

Exit status: 0 verified and checked; 1 rejected (the reason on stdout); 3 securesystemslib (with
cryptography) is not installed.
"""

import hashlib
import json
import sys

try:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey
except ImportError as e:
    print(f"securesystemslib[crypto] is not importable ({e}): run `make tools`")
    sys.exit(3)

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


def reject(why: str) -> None:
    print(f"rejected: {why}")
    sys.exit(1)


def main() -> None:
    doc = json.load(sys.stdin)
    public_key = load_pem_public_key(doc["publicKeyPem"].encode())
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if hashlib.sha256(spki).hexdigest() != doc["keyid"]:
        reject(f"keyid {doc['keyid']} is not the SHA-256 of the key's SPKI DER")

    key = SSlibKey.from_crypto(public_key, keyid=doc["keyid"])
    if key.keytype != "ed25519" or key.scheme != "ed25519":
        reject(f"not an ed25519 key: {key.keytype}/{key.scheme}")

    envelope = Envelope.from_dict(doc["envelope"])
    try:
        envelope.verify(keys=[key], threshold=1)
    except VerificationError as e:
        reject(f"VerificationError: {e}")

    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        reject(f"payloadType is {envelope.payload_type!r}")
    statement = json.loads(envelope.payload)
    if statement.get("_type") != IN_TOTO_STATEMENT_TYPE:
        reject(f"_type is {statement.get('_type')!r}")
    if statement.get("predicateType") != doc["predicateType"]:
        reject(f"predicateType is {statement.get('predicateType')!r}")
    attested = {s.get("name"): s["digest"].get("sha256") for s in statement["subject"]}
    if attested != doc["subjects"]:
        reject(f"subjects are {attested!r}")
    print("verified")


if __name__ == "__main__":
    main()
