/**
 * A run's evidence files: what the report phase stores in the artifact store beside the transcripts
 * and the report, and the list of every such file with the digest and size of its stored bytes. The
 * service registers them as evidence and signs attestations over these digests, so a digest is
 * always that of the exact bytes the store holds, and a name (the key below the run's prefix) is
 * never used twice in a run.
 */
import { createHash } from 'node:crypto';
import type { CodingRunInput, EvidenceFileResult, EvidenceKind, PhaseName, RunSummaryResult } from '@ameide/temporal';
import type { ArtifactStore, StoredArtifact } from '../artifacts.js';
import type { Redactor } from '../guardrails/redact.js';

export const MEDIA_TYPES = {
  json: 'application/json',
  text: 'text/plain',
  diff: 'text/x-diff',
  gzip: 'application/gzip',
  jsonLines: 'application/jsonl',
} as const;

/** Names of the evidence files (keys below the run's artifact prefix). */
export const EVIDENCE_NAMES = {
  report: 'report.json',
  diff: 'diff.patch',
  testReport: 'test-report.json',
  pullRequest: 'pull-request.json',
  previewCheck: 'preview-check.json',
  handoff: 'handoff.tar.gz',
  /** The transcript of a command phase, as runCommandPhase (and the preview) store it. */
  transcript: (phase: TranscriptPhase) => `transcripts/${phase}.log`,
  /**
   * A local preview keeps writing its transcript while it serves, and stores it once more when it
   * stops (after the run ended): its evidence is a copy as the report phase found it.
   */
  previewSnapshot: 'transcripts/preview-at-report.log',
  /** A coding agent's turns, one JSON event per line (activities/agent.ts). */
  agentTranscript: 'agent/transcript.jsonl',
} as const;

/** Phases whose command leaves a transcript in the artifact store. */
export const TRANSCRIPT_PHASES = ['install', 'agent', 'test', 'preview'] as const satisfies readonly PhaseName[];
export type TranscriptPhase = (typeof TRANSCRIPT_PHASES)[number];

/** What the report phase knows when it gathers the evidence (all of it plain data from the workflow). */
export interface EvidenceInput {
  run: CodingRunInput;
  summary: RunSummaryResult;
  /** The phases the run recorded as started (not skipped): their transcripts may be stored. */
  phases: PhaseName[];
  /** Size of the handoff bundle createHandoff stored (`summary.handoffUri`); read back from the store when absent. */
  handoffSizeBytes?: number;
  /** What the run's preview_live update said (`url`, `alias_url`, `health`, `expire_time`). */
  previewLive?: Record<string, string>;
}

export interface EvidenceDeps {
  artifacts: ArtifactStore;
  /** The run's artifact prefix, `runs/<tenant>/<run>/`. */
  prefix: string;
  /** The unified diff of base..head, made by the worker's own git in the run's import repository. */
  diff(base: string, head: string): Promise<Buffer>;
  redactor: Redactor;
  signal?: AbortSignal;
  /** Reports progress (a heartbeat naming the step). */
  step?(name: string): void;
}

/** An evidence entry for a stored object. */
export function evidenceFile(kind: EvidenceKind, name: string, stored: StoredArtifact, mediaType: string): EvidenceFileResult {
  return { kind, name, uri: stored.uri, sha256: stored.sha256, sizeBytes: stored.size, mediaType };
}

/** What a store answers for a key it does not hold: ENOENT (file://), NoSuchKey / 404 (s3://). */
export function isMissing(err: unknown): boolean {
  for (let e = err as { code?: unknown; name?: unknown; cause?: unknown; $metadata?: { httpStatusCode?: number } } | undefined; e; e = e.cause as typeof e) {
    if (e.code === 'ENOENT' || e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404) return true;
  }
  return false;
}

const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';

/**
 * Stores the evidence files the report phase writes (diff, test report, pull request, preview
 * check) and lists them, with the transcripts and the handoff bundle stored earlier, by the digests
 * of their stored bytes. The report itself is stored and listed by writeReport.
 */
export async function gatherEvidence(deps: EvidenceDeps, input: EvidenceInput): Promise<EvidenceFileResult[]> {
  const { run, summary } = input;
  const { artifacts, prefix, redactor, signal } = deps;
  const put = (name: string, body: Buffer | string) => artifacts.put(prefix + name, body, { signal });
  const evidence: EvidenceFileResult[] = [];

  deps.step?.('transcripts');
  const started = new Set(input.phases);
  for (const phase of TRANSCRIPT_PHASES) {
    if (!started.has(phase)) continue;
    const name = EVIDENCE_NAMES.transcript(phase);
    let data: Buffer;
    try {
      data = await artifacts.get(prefix + name, { signal });
    } catch (err) {
      // A phase stopped (cancelled, out of budget) before its command's transcript was stored.
      if (isMissing(err)) continue;
      throw err;
    }
    if (phase === 'preview' && run.repo.preview?.provider === 'local') {
      evidence.push(evidenceFile('transcript', EVIDENCE_NAMES.previewSnapshot, await put(EVIDENCE_NAMES.previewSnapshot, data), MEDIA_TYPES.text));
    } else {
      evidence.push(evidenceFile('transcript', name, { uri: artifacts.uri(prefix + name), sha256: sha256(data), size: data.length }, MEDIA_TYPES.text));
    }
  }

  if (summary.agent?.transcriptUri) {
    const name = EVIDENCE_NAMES.agentTranscript;
    try {
      const data = await artifacts.get(prefix + name, { signal });
      evidence.push(evidenceFile('transcript', name, { uri: artifacts.uri(prefix + name), sha256: sha256(data), size: data.length }, MEDIA_TYPES.jsonLines));
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }

  if (summary.pushed && summary.baseCommit && summary.headCommit) {
    deps.step?.('diff');
    // What was pushed: push protection found no secret in it; redacted all the same, like every file the worker stores.
    const diff = redactor.redactBuffer(await deps.diff(summary.baseCommit, summary.headCommit));
    evidence.push(evidenceFile('diff', EVIDENCE_NAMES.diff, await put(EVIDENCE_NAMES.diff, diff), MEDIA_TYPES.diff));
  }

  deps.step?.('store');
  if (summary.testReport) {
    const stored = await put(EVIDENCE_NAMES.testReport, json(redactor.redactDeep(summary.testReport)));
    evidence.push(evidenceFile('test_report', EVIDENCE_NAMES.testReport, stored, MEDIA_TYPES.json));
  }
  if (summary.pullRequest) {
    const pr = { ...summary.pullRequest, branch: summary.branch, headCommit: summary.headCommit };
    evidence.push(
      evidenceFile('pull_request', EVIDENCE_NAMES.pullRequest, await put(EVIDENCE_NAMES.pullRequest, json(redactor.redactDeep(pr))), MEDIA_TYPES.json),
    );
  }
  if (summary.previewUrl) {
    const live = input.previewLive ?? {};
    const check = {
      provider: run.repo.preview?.provider,
      url: summary.previewUrl,
      aliasUrl: summary.previewAliasUrl ?? '',
      healthPath: run.repo.preview?.provider === 'local' ? run.repo.preview.healthPath : undefined,
      health: live.health ?? '',
      expireTime: live.expire_time,
      headCommit: summary.headCommit,
    };
    const stored = await put(EVIDENCE_NAMES.previewCheck, json(redactor.redactDeep(check)));
    evidence.push(evidenceFile('preview_check', EVIDENCE_NAMES.previewCheck, stored, MEDIA_TYPES.json));
  }

  if (summary.handoffUri && summary.handoffSha256) {
    const key = prefix + EVIDENCE_NAMES.handoff;
    let stored: StoredArtifact = { uri: summary.handoffUri, sha256: summary.handoffSha256, size: input.handoffSizeBytes ?? -1 };
    if (stored.size < 0) {
      const data = await artifacts.get(key, { signal });
      stored = { uri: artifacts.uri(key), sha256: sha256(data), size: data.length };
    }
    evidence.push(evidenceFile('handoff_bundle', EVIDENCE_NAMES.handoff, stored, MEDIA_TYPES.gzip));
  }
  return evidence;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
