import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { AttestationError, verifyEnvelope, type DsseEnvelope, type TrustedKey } from '@ameide/attest';
import { loadS3Settings } from '@ameide/config';
import { governanceV1 } from '@ameide/contracts';
import type { GovernanceServiceClient } from '@ameide/sdk';
import { commandLineError, UsageError } from './args.js';
import type { OutputOptions } from './args.js';
import type { Ctx } from './context.js';
import { emit, formatOf, protoJson, table } from './output.js';
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

export interface SelectorOptions {
  workItem?: string;
  timebox?: string;
  goal?: string;
  artifact?: string;
}

/** What ListEvidence selects: a run (the argument) or one of the flags, exactly one. */
function selector(run: string | undefined, opts: SelectorOptions): governanceV1.ListEvidenceRequest | Record<string, unknown> {
  const given = [run, opts.workItem, opts.timebox, opts.goal, opts.artifact].filter((x) => x !== undefined).length;
  if (given !== 1) throw commandLineError('evidence list needs one of: a run id, --work-item, --timebox, --goal, --artifact kind:id');
  if (opts.artifact) {
    const [kind, ...id] = opts.artifact.split(':');
    if (!kind || !id.length) throw commandLineError('--artifact needs <kind>:<id>, e.g. increment:S1');
    return { artifact: { kind, id: id.join(':') } };
  }
  if (opts.workItem) return { workItemId: opts.workItem };
  if (opts.timebox) return { timeboxId: opts.timebox };
  if (opts.goal) return { goalId: opts.goal };
  return { runId: run };
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
async function trustedKeys(api: GovernanceServiceClient, file: string | undefined): Promise<{ keys: TrustedKey[]; development: boolean }> {
  if (file) {
    const { keyIdOf } = await import('@ameide/attest');
    const pem = await readFile(file, 'utf8').catch((err: Error) => {
      throw new UsageError(`cannot read --public-key ${file}: ${err.message}`);
    });
    return { keys: [{ keyid: keyIdOf(pem), publicKeyPem: pem }], development: false };
  }
  const res = await api.getSigningKeys({});
  return { keys: res.keys.map((k) => ({ keyid: k.keyId, publicKeyPem: k.publicKeyPem })), development: res.keys.some((k) => k.development) };
}

/**
 * Evidence and attestations of a selector, following next_page_token: up to `limit` of each; without
 * a limit, one page of the service's default size, or with `all` every page.
 */
async function evidencePages(
  api: GovernanceServiceClient,
  sel: Omit<governanceV1.ListEvidenceRequest, '$typeName' | 'pageSize' | 'pageToken'> | Record<string, unknown>,
  limit: number | undefined,
  all = false,
): Promise<governanceV1.ListEvidenceResponse> {
  const res = create(governanceV1.ListEvidenceResponseSchema, {});
  let pageToken = '';
  do {
    const page = await api.listEvidence({ ...sel, pageSize: limit ? Math.min(limit, 1000) : 0, pageToken });
    res.evidence.push(...page.evidence);
    res.attestations.push(...page.attestations);
    pageToken = page.nextPageToken;
  } while (pageToken && (limit ? res.evidence.length < limit || res.attestations.length < limit : all));
  if (limit) {
    res.evidence.splice(limit);
    res.attestations.splice(limit);
  }
  return res;
}

export async function evidenceList(ctx: Ctx, run: string | undefined, opts: OutputOptions & SelectorOptions & { limit?: number }): Promise<number> {
  const res = await evidencePages(ctx.governance(), selector(run, opts), opts.limit);
  emit(ctx.o, formatOf(opts), protoJson(governanceV1.ListEvidenceResponseSchema, res), () => {
    const files = table(
      ctx.term,
      [{ header: 'kind' }, { header: 'name', shrink: true }, { header: 'size', right: true }, { header: 'sha256' }, { header: 'run' }],
      res.evidence.map((e) => [e.kind, e.name, size(e.sizeBytes), e.sha256.slice(0, 16), e.runId.slice(0, 8)]),
      'no evidence',
    );
    const atts = res.attestations.length
      ? table(
          ctx.term,
          [{ header: 'attestation' }, { header: 'subjects', right: true }, { header: 'key' }, { header: 'run' }, { header: 'attached to', shrink: true }],
          res.attestations.map((a) => [
            predicateName(a.predicateType),
            String(a.subjects.length),
            `${a.keyId.slice(0, 16)}${a.development ? ' (development key)' : ''}`,
            a.runId.slice(0, 8),
            a.artifacts.map((x) => `${x.kind} ${x.id}`).join(', ') || '-',
          ]),
          '',
        )
      : '';
    return atts ? `${files}\n\n${atts}` : files;
  });
  return 0;
}

export async function evidenceDownload(ctx: Ctx, runId: string, opts: { dir?: string }): Promise<number> {
  const res = await evidencePages(ctx.governance(), { runId }, undefined, true);
  const dir = resolve(ctx.cwd, opts.dir ?? `./evidence-${runId.slice(0, 8)}`);
  const { problems } = await download(res.evidence, res.attestations, dir);
  for (const p of problems) ctx.o.out(`✗ ${p}`);
  ctx.o.out(`${res.evidence.length} evidence files and ${res.attestations.length} attestations in ${dir}`);
  return problems.length ? 1 : 0;
}

export async function evidenceVerify(ctx: Ctx, runId: string, opts: OutputOptions & { publicKey?: string; dir?: string }): Promise<number> {
  const format = formatOf(opts);
  const api = ctx.governance();
  const res = await evidencePages(api, { runId }, undefined, true);
  const dir = opts.dir ? resolve(ctx.cwd, opts.dir) : await mkdtemp(join(tmpdir(), 'ameide-evidence-'));
  try {
    const { files, problems } = await download(res.evidence, res.attestations, dir);
    const { keys, development } = await trustedKeys(api, opts.publicKey && resolve(ctx.cwd, opts.publicKey));
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
    const verdict = problems.length
      ? `verification FAILED: ${problems.length} problem${problems.length === 1 ? '' : 's'}`
      : `verified: ${res.evidence.length} evidence files, ${res.attestations.length} attestations${development ? ' (signed with the development key)' : ''}`;
    emit(ctx.o, format, { runId, verified: problems.length === 0, development, checked: lines, problems }, () =>
      [...lines, ...problems.map((p) => `✗ ${p}`), verdict].join('\n'),
    );
    return problems.length ? 1 : 0;
  } finally {
    if (!opts.dir) await rm(dir, { recursive: true, force: true });
  }
}
