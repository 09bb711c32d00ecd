import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { toJson } from '@bufbuild/protobuf';
import { AttestationError, verifyEnvelope, type DsseEnvelope, type TrustedKey } from '@ameide/attest';
import { loadS3Settings } from '@ameide/config';
import { governanceV1 } from '@ameide/contracts';
import type { GovernanceServiceClient } from '@ameide/sdk';
import { flag, has, positional, UsageError, type Args } from './args.js';
import type { Output } from './commands.js';
import { fetchArtifact } from './handoff.js';
import { createS3Loader } from './s3.js';

type Evidence = governanceV1.Evidence;
type Attestation = governanceV1.Attestation;

const size = (n: bigint | number) => {
  const b = Number(n);
  return b < 1024 ? `${b} B` : b < 1024 * 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${(b / 1024 / 1024).toFixed(1)} MiB`;
};

/** The predicate type's last path segments, e.g. "slsa provenance/v1", for file names and lines. */
const predicateName = (t: string) =>
  t.includes('slsa.dev/provenance') ? 'slsa-provenance' : t.includes('test-result') ? 'test-result' : t.replace(/\W+/g, '-');

/** A file name inside `dir` for an evidence name: never outside it. */
function inside(dir: string, name: string): string {
  const target = resolve(dir, name);
  if (!target.startsWith(resolve(dir) + '/')) throw new UsageError(`evidence name "${name}" leaves the download directory`);
  return target;
}

/** What ListEvidence selects: a run (positional) or one of the flags. */
function selector(args: Args): governanceV1.ListEvidenceRequest | Record<string, unknown> {
  const artifact = flag(args, 'artifact');
  if (artifact) {
    const [kind, ...id] = artifact.split(':');
    if (!kind || !id.length) throw new UsageError('--artifact needs <kind>:<id>, e.g. increment:S1');
    return { artifact: { kind, id: id.join(':') } };
  }
  const workItemId = flag(args, 'work-item');
  if (workItemId) return { workItemId };
  const timeboxId = flag(args, 'timebox');
  if (timeboxId) return { timeboxId };
  const goalId = flag(args, 'goal');
  if (goalId) return { goalId };
  return { runId: positional(args, 2, 'run id (or --work-item, --timebox, --goal, --artifact kind:id)') };
}

/** Downloads a run's evidence into `dir` (each file checked against its digest) and writes its attestations' envelopes. */
async function download(evidence: Evidence[], attestations: Attestation[], dir: string): Promise<{ files: Map<string, Buffer>; problems: string[] }> {
  const s3 = createS3Loader(loadS3Settings());
  const files = new Map<string, Buffer>();
  const problems: string[] = [];
  for (const e of evidence) {
    const target = inside(dir, e.name);
    let data: Buffer;
    try {
      data = await fetchArtifact(e.uri, { s3 });
    } catch (err) {
      problems.push(`${e.name}: ${(err as Error).message}`);
      continue;
    }
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, data);
    files.set(e.name, data);
    const sha = createHash('sha256').update(data).digest('hex');
    if (sha !== e.sha256) problems.push(`${e.name}: sha256 ${sha} differs from the recorded ${e.sha256}`);
    else if (BigInt(data.length) !== e.sizeBytes) problems.push(`${e.name}: ${data.length} bytes, recorded ${e.sizeBytes}`);
  }
  for (const a of attestations) {
    const target = inside(dir, `attestations/${predicateName(a.predicateType)}.dsse.json`);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, JSON.stringify(envelopeJson(a), null, 2) + '\n');
  }
  return { files, problems };
}

/** The DSSE envelope in its standard JSON form ({payloadType, payload, signatures[{keyid, sig}]}). */
function envelopeJson(a: Attestation): DsseEnvelope {
  const e = a.envelope;
  return { payloadType: e?.payloadType ?? '', payload: e?.payload ?? '', signatures: (e?.signatures ?? []).map((s) => ({ keyid: s.keyid, sig: s.sig })) };
}

/** The keys to trust: a public key file given with --public-key, else the service's published keys. */
async function trustedKeys(api: GovernanceServiceClient, args: Args): Promise<{ keys: TrustedKey[]; development: boolean }> {
  const file = flag(args, 'public-key');
  if (file) {
    const { keyIdOf } = await import('@ameide/attest');
    const pem = await readFile(resolve(file), 'utf8').catch((err: Error) => {
      throw new UsageError(`cannot read --public-key ${file}: ${err.message}`);
    });
    return { keys: [{ keyid: keyIdOf(pem), publicKeyPem: pem }], development: false };
  }
  const res = await api.getSigningKeys({});
  return { keys: res.keys.map((k) => ({ keyid: k.keyId, publicKeyPem: k.publicKeyPem })), development: res.keys.some((k) => k.development) };
}

/** `ameide evidence list|download|verify`: a run's checksummed evidence and its signed attestations. */
export async function evidenceCommand(api: GovernanceServiceClient, sub: string, args: Args, o: Output): Promise<number> {
  const json = has(args, 'json');
  switch (sub) {
    case 'list': {
      const res = await api.listEvidence(selector(args));
      if (json) {
        o.out(JSON.stringify(toJson(governanceV1.ListEvidenceResponseSchema, res), null, 2));
        return 0;
      }
      const lines = res.evidence.map(
        (e) => `${e.kind.padEnd(15)} ${e.name.padEnd(28)} ${size(e.sizeBytes).padStart(10)}  sha256:${e.sha256.slice(0, 16)}  run ${e.runId.slice(0, 8)}`,
      );
      const atts = res.attestations.map(
        (a) =>
          `attestation ${predicateName(a.predicateType).padEnd(16)} ${a.subjects.length} subjects  key ${a.keyId.slice(0, 16)}${a.development ? ' (development key)' : ''}  run ${a.runId.slice(0, 8)}${a.artifacts.length ? `  → ${a.artifacts.map((x) => `${x.kind} ${x.id}`).join(', ')}` : ''}`,
      );
      o.out([...lines, ...atts].join('\n') || 'no evidence');
      return 0;
    }
    case 'download': {
      const runId = positional(args, 2, 'run id');
      const res = await api.listEvidence({ runId });
      const dir = resolve(flag(args, 'dir') ?? `./evidence-${runId.slice(0, 8)}`);
      const { problems } = await download(res.evidence, res.attestations, dir);
      for (const p of problems) o.out(`✗ ${p}`);
      o.out(`${res.evidence.length} evidence files and ${res.attestations.length} attestations in ${dir}`);
      return problems.length ? 1 : 0;
    }
    case 'verify': {
      const runId = positional(args, 2, 'run id');
      const res = await api.listEvidence({ runId });
      const given = flag(args, 'dir');
      const dir = given ? resolve(given) : await mkdtemp(join(tmpdir(), 'ameide-evidence-'));
      try {
        const { files, problems } = await download(res.evidence, res.attestations, dir);
        const { keys, development } = await trustedKeys(api, args);
        const lines: string[] = [];
        for (const e of res.evidence) if (files.has(e.name) && !problems.some((p) => p.startsWith(`${e.name}:`))) lines.push(`✓ ${e.kind} ${e.name} sha256 ok`);
        const digests = res.evidence
          .filter((e) => files.has(e.name))
          .map((e) => ({ name: e.name, sha256: createHash('sha256').update(files.get(e.name)!).digest('hex') }));
        if (!res.attestations.length) problems.push('the run has no attestations');
        for (const a of res.attestations) {
          const what = `attestation ${predicateName(a.predicateType)}`;
          try {
            const st = verifyEnvelope(envelopeJson(a), keys);
            if (st.predicateType !== a.predicateType) throw new AttestationError(`its statement's predicateType is ${st.predicateType}`);
            // Every subject the signed statement names must be a downloaded file with that digest.
            const mismatch = st.subject.flatMap((sub) => {
              const file = digests.find((d) => d.name === sub.name);
              if (!file) return [`subject ${sub.name} is not among the run's evidence`];
              return file.sha256 === sub.digest.sha256
                ? []
                : [`subject ${sub.name}: the file's sha256 ${file.sha256} differs from the signed ${sub.digest.sha256}`];
            });
            if (mismatch.length) problems.push(...mismatch.map((m) => `${what}: ${m}`));
            else lines.push(`✓ ${what}: signature by ${a.keyId.slice(0, 16)} valid, ${st.subject.length} subjects match`);
          } catch (err) {
            if (!(err instanceof AttestationError)) throw err;
            problems.push(`${what}: ${err.message}`);
          }
        }
        if (json) o.out(JSON.stringify({ runId, verified: problems.length === 0, development, checked: lines, problems }, null, 2));
        else {
          for (const l of lines) o.out(l);
          for (const p of problems) o.out(`✗ ${p}`);
          o.out(
            problems.length
              ? `verification FAILED: ${problems.length} problem${problems.length === 1 ? '' : 's'}`
              : `verified: ${res.evidence.length} evidence files, ${res.attestations.length} attestations${development ? ' (signed with the development key)' : ''}`,
          );
        }
        return problems.length ? 1 : 0;
      } finally {
        if (!given) await rm(dir, { recursive: true, force: true });
      }
    }
    default:
      throw new UsageError(
        'usage: ameide evidence list <run>|--work-item id|--timebox id|--goal id|--artifact kind:id | download <run> [--dir d] | verify <run> [--public-key pem]',
      );
  }
}
