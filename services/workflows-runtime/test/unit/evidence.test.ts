/**
 * The report phase's evidence files (evidence/files.ts) against a file:// artifact store: every
 * listed digest is that of the bytes the store holds; and the run's provenance (evidence/provenance.ts).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_PULL_REQUEST, resolveGuardrails, type CodingRunInput, type EvidenceFileResult, type RunSummaryResult } from '@ameide/temporal';
import { FileArtifactStore } from '../../src/artifacts.js';
import { EVIDENCE_NAMES, gatherEvidence, isMissing, type EvidenceInput } from '../../src/evidence/files.js';
import { boundedCommand, MAX_AGENT_COMMAND_CHARS, runProvenance, versionLine } from '../../src/evidence/provenance.js';
import { Redactor } from '../../src/guardrails/redact.js';
import { transcriptKey } from '../../src/previews/local.js';

const SECRET = 'sk_test_evidence_9f8e7d6c';
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function storeIn(): { store: FileArtifactStore; root: string } {
  const root = mkdtempSync(join(tmpdir(), 'evidence-'));
  dirs.push(root);
  return { store: new FileArtifactStore(pathToFileURL(root).href), root };
}

function runOf(o: Partial<CodingRunInput['repo']> = {}): CodingRunInput {
  return {
    runId: 'run-e1',
    tenantId: 'acme',
    planId: 'plan-1',
    planVersion: 1,
    definitionId: 'def-1',
    definitionName: 'calc',
    repo: {
      repoUrl: 'https://git.example/acme/calc.git',
      defaultBranch: 'main',
      installCommand: 'npm ci',
      agentCommand: 'agent',
      testCommand: 'npm test',
      branchPrefix: 'ameide/',
      phaseTimeoutSeconds: 600,
      env: {},
      guardrails: resolveGuardrails({}),
      secrets: [],
      pullRequest: DEFAULT_PULL_REQUEST,
      ...o,
    },
    workItems: [],
    methodology: { profile: '', timeboxIds: [], goalIds: [], workItemIds: [], elementIds: [] },
    trigger: 'manual',
  };
}

const SUMMARY: RunSummaryResult = {
  branch: 'ameide/calc-1',
  baseCommit: 'a'.repeat(40),
  headCommit: 'b'.repeat(40),
  filesChanged: 1,
  insertions: 3,
  deletions: 0,
  transcriptsUri: '',
  pushed: true,
};

/** Every listed file's digest and size are those of what the store holds under its URI. */
function expectStored(evidence: EvidenceFileResult[]): void {
  for (const e of evidence) {
    const data = readFileSync(fileURLToPath(e.uri));
    expect({ name: e.name, sha256: sha256(data), size: data.length }).toEqual({ name: e.name, sha256: e.sha256, size: e.sizeBytes });
  }
  expect(new Set(evidence.map((e) => e.name)).size).toBe(evidence.length);
}

describe('gatherEvidence', () => {
  const prefix = 'runs/acme/run-e1/';

  it('lists the stored transcripts, writes the diff, test report and pull request, and lists the handoff bundle', async () => {
    const { store } = storeIn();
    await store.put(`${prefix}transcripts/install.log`, 'installed\n');
    await store.put(`${prefix}transcripts/test.log`, Buffer.from([0, 1, 2, 0xff, 10]));
    const handoff = await store.put(`${prefix}handoff.tar.gz`, Buffer.from('not really a tarball'));
    const diffs: string[][] = [];
    const input: EvidenceInput = {
      run: runOf(),
      summary: {
        ...SUMMARY,
        testReport: { format: 'junit', passed: 2, failed: 1, skipped: 0, durationMs: 5, failingTests: [`uses ${SECRET}`], sources: ['reports/junit.xml'] },
        pullRequest: { provider: 'git', number: 3, url: '', state: 'open' },
        handoffUri: handoff.uri,
        handoffSha256: handoff.sha256,
      },
      // agent ran, but its transcript was never stored (e.g. cancelled before): left out.
      phases: ['prepare', 'install', 'agent', 'test', 'publish', 'pull_request'],
      handoffSizeBytes: handoff.size,
    };
    const evidence = await gatherEvidence(
      {
        artifacts: store,
        prefix,
        redactor: new Redactor([SECRET]),
        diff: async (base, head) => {
          diffs.push([base, head]);
          return Buffer.from(`diff --git a/calc.js b/calc.js\n+export const key = '${SECRET}';\n`);
        },
      },
      input,
    );
    expect(evidence.map((e) => [e.kind, e.name, e.mediaType])).toEqual([
      ['transcript', 'transcripts/install.log', 'text/plain'],
      ['transcript', 'transcripts/test.log', 'text/plain'],
      ['diff', 'diff.patch', 'text/x-diff'],
      ['test_report', 'test-report.json', 'application/json'],
      ['pull_request', 'pull-request.json', 'application/json'],
      ['handoff_bundle', 'handoff.tar.gz', 'application/gzip'],
    ]);
    expectStored(evidence);
    expect(diffs).toEqual([[SUMMARY.baseCommit, SUMMARY.headCommit]]);
    const read = (name: string) => readFileSync(fileURLToPath(evidence.find((e) => e.name === name)!.uri), 'utf8');
    expect(read('diff.patch')).toBe("diff --git a/calc.js b/calc.js\n+export const key = '[REDACTED]';\n");
    expect(JSON.parse(read('test-report.json'))).toMatchObject({ format: 'junit', passed: 2, failingTests: ['uses [REDACTED]'] });
    expect(JSON.parse(read('pull-request.json'))).toEqual({
      provider: 'git',
      number: 3,
      url: '',
      state: 'open',
      branch: 'ameide/calc-1',
      headCommit: 'b'.repeat(40),
    });
    expect(evidence.find((e) => e.kind === 'handoff_bundle')).toMatchObject({ uri: handoff.uri, sha256: handoff.sha256, sizeBytes: handoff.size });
  });

  it('makes no diff when nothing was pushed, and reads the bundle back when its size is unknown', async () => {
    const { store } = storeIn();
    const handoff = await store.put(`${prefix}handoff.tar.gz`, Buffer.alloc(1234, 7));
    const evidence = await gatherEvidence(
      {
        artifacts: store,
        prefix,
        redactor: new Redactor([]),
        diff: () => Promise.reject(new Error('no diff expected')),
      },
      { run: runOf(), summary: { ...SUMMARY, pushed: false, handoffUri: handoff.uri, handoffSha256: handoff.sha256 }, phases: ['prepare', 'install'] },
    );
    expect(evidence).toEqual([
      { kind: 'handoff_bundle', name: 'handoff.tar.gz', uri: handoff.uri, sha256: handoff.sha256, sizeBytes: 1234, mediaType: 'application/gzip' },
    ]);
  });

  it("copies a local preview's transcript (the preview keeps writing it after the run) and lists the copy; a deployed preview's as it is", async () => {
    const { store } = storeIn();
    const local = runOf({
      preview: { provider: 'local', command: 'npm start', aliasCommand: '', healthPath: '/health', readyTimeoutSeconds: 60, ttlSeconds: 3600 },
    });
    // The preview activity stores its transcript under transcriptKey: the evidence names the same key.
    expect(transcriptKey(local.tenantId, local.runId)).toBe(prefix + EVIDENCE_NAMES.transcript('preview'));
    await store.put(transcriptKey(local.tenantId, local.runId), 'listening on 8080\n');
    const deps = { artifacts: store, prefix, redactor: new Redactor([]), diff: async () => Buffer.from('diff\n') };
    const summary = { ...SUMMARY, previewUrl: 'https://run-e1.preview.example', previewAliasUrl: 'https://calc-1.preview.example' };
    const previewLive = {
      url: summary.previewUrl,
      alias_url: summary.previewAliasUrl,
      health: '200 OK from /health after 0.4s',
      expire_time: '2030-01-01T00:00:00.000Z',
    };
    const evidence = await gatherEvidence(deps, { run: local, summary, phases: ['preview'], previewLive });
    expect(evidence.map((e) => [e.kind, e.name])).toEqual([
      ['transcript', 'transcripts/preview-at-report.log'],
      ['diff', 'diff.patch'],
      ['preview_check', 'preview-check.json'],
    ]);
    expectStored(evidence);
    // The preview stores its transcript again when it stops: the copy keeps its digest.
    await store.put(transcriptKey(local.tenantId, local.runId), 'listening on 8080\n[ameide] stopped: expired\n');
    expectStored(evidence);
    expect(JSON.parse(readFileSync(fileURLToPath(evidence[2]!.uri), 'utf8'))).toEqual({
      provider: 'local',
      url: summary.previewUrl,
      aliasUrl: summary.previewAliasUrl,
      healthPath: '/health',
      health: '200 OK from /health after 0.4s',
      expireTime: '2030-01-01T00:00:00.000Z',
      headCommit: 'b'.repeat(40),
    });

    const deployed = runOf({
      preview: { provider: 'command', command: './deploy', aliasCommand: '', healthPath: '/', readyTimeoutSeconds: 60, ttlSeconds: 3600 },
    });
    const again = await gatherEvidence(deps, { run: deployed, summary, phases: ['preview'] });
    expect(again.map((e) => e.name)).toEqual(['transcripts/preview.log', 'diff.patch', 'preview-check.json']);
    expectStored(again);
  });

  it('passes on failures of the store other than a missing object', async () => {
    const { store } = storeIn();
    const broken = { ...store, uri: (k: string) => store.uri(k), put: store.put.bind(store), get: () => Promise.reject(new Error('connection reset')) };
    await expect(
      gatherEvidence(
        { artifacts: broken, prefix, redactor: new Redactor([]), diff: async () => Buffer.alloc(0) },
        { run: runOf(), summary: SUMMARY, phases: ['test'] },
      ),
    ).rejects.toThrow('connection reset');
  });

  it('knows a missing object from both stores', () => {
    expect(isMissing(Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' }))).toBe(true);
    const s3 = Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    expect(isMissing(new Error('cannot read artifact s3://b/k: The specified key does not exist.', { cause: s3 }))).toBe(true);
    expect(
      isMissing(new Error('cannot read artifact s3://b/k: Access Denied', { cause: Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }) })),
    ).toBe(false);
  });
});

describe('runProvenance', () => {
  it('names the worker, the workflow run, git, node and bubblewrap when used, and the redacted agent command', async () => {
    const p = await runProvenance({ workerIdentity: '7@host', temporalRunId: 'wf-run-1', agentCommand: 'codex exec --token [REDACTED]' });
    expect(p).toMatchObject({ workerIdentity: '7@host', workerVersion: '0.1.0', temporalRunId: 'wf-run-1' });
    expect(p.toolVersions).toMatchObject({ node: process.version, agent_command: 'codex exec --token [REDACTED]' });
    expect(p.toolVersions.git).toMatch(/^\d+\.\d+/);
    expect(p.toolVersions.bubblewrap).toBeUndefined();
    // A tool that cannot be asked is left out.
    const q = await runProvenance({ workerIdentity: '', temporalRunId: '', agentCommand: 'a', bubblewrap: '/nonexistent/bwrap' });
    expect(q.toolVersions.bubblewrap).toBeUndefined();
  });

  it('reads the version off the first line, and bounds a long agent command with its digest', () => {
    expect(versionLine('git version 2.43.0\n', /^git version\s*/)).toBe('2.43.0');
    expect(versionLine('bubblewrap 0.9.0\n', /^bubblewrap\s*/)).toBe('0.9.0');
    expect(boundedCommand('short')).toBe('short');
    const long = 'é'.repeat(MAX_AGENT_COMMAND_CHARS + 5);
    const bounded = boundedCommand(long);
    expect(bounded.startsWith('é'.repeat(MAX_AGENT_COMMAND_CHARS) + '… (')).toBe(true);
    expect(bounded).toContain(`sha256 ${sha256(long)}`);
    expect(Buffer.byteLength(bounded)).toBeLessThan(4096);
  });
});
