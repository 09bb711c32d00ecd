import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStatus, StatusUpdateKind, type EvidenceFile, type Run } from '@ameide/contracts';
import { SAMPLE_PREVIEW } from '@ameide/devstack';
import { applySample, MULTIPLY, sampleOrigin, startHarnessWithRouter, useHarnessWithOrigin, watchAll, type Harness } from '../support/harness.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The bytes the file:// artifact store holds for an evidence file. */
const stored = (e: EvidenceFile) => readFileSync(fileURLToPath(e.uri));

/** Every evidence file is in the store with exactly the listed digest and size; names are unique. */
function expectStored(evidence: EvidenceFile[]): void {
  for (const e of evidence) {
    const data = stored(e);
    expect({ name: e.name, sha256: sha256(data), size: data.length }).toEqual({ name: e.name, sha256: e.sha256, size: Number(e.sizeBytes) });
  }
  expect(new Set(evidence.map((e) => e.name)).size).toBe(evidence.length);
}

describe('evidence files: run_finished lists what the worker stored, by the digests of the stored bytes', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((s) => ({ h, origin } = s));

  const run = async (definition: string, item: string): Promise<{ done: Run; finished: Run['summary'] }> => {
    const { run } = await h.acme.startWorkflowRun({ definition, workItems: [{ ...MULTIPLY, id: item }] });
    const updates = await watchAll(h.acme, run!.id);
    const finished = updates.find((u) => u.kind === StatusUpdateKind.RUN_FINISHED)!.summary;
    return { done: (await h.acme.getWorkflowRun({ id: run!.id })).run!, finished };
  };

  it('a completed run of the sample: report, transcripts, diff, test report and pull request, with the provenance', async () => {
    await applySample(h.acme, origin);
    const { done, finished } = await run('sample', 'CALC-1');
    expect(done.status).toBe(RunStatus.COMPLETED);
    const evidence = done.summary!.evidence;
    expect(evidence.map((e) => [e.kind, e.name, e.mediaType])).toEqual([
      ['report', 'report.json', 'application/json'],
      ['transcript', 'transcripts/install.log', 'text/plain'],
      ['transcript', 'transcripts/agent.log', 'text/plain'],
      ['transcript', 'transcripts/test.log', 'text/plain'],
      ['diff', 'diff.patch', 'text/x-diff'],
      ['test_report', 'test-report.json', 'application/json'],
      ['pull_request', 'pull-request.json', 'application/json'],
    ]);
    expectStored(evidence);
    // The run's stored summary is run_finished's.
    expect(finished!.evidence).toEqual(evidence);
    expect(evidence[0]!.uri).toBe(`${done.summary!.transcriptsUri.replace(/transcripts\/$/, '')}report.json`);

    const file = (name: string) => stored(evidence.find((e) => e.name === name)!).toString('utf8');
    // The diff is what was pushed: the agent's multiply, base..head.
    const diff = file('diff.patch');
    expect(diff).toMatch(/^diff --git a\//);
    expect(diff).toMatch(/^\+export function multiply\(a, b\) \{$/m);
    const { format, passed, failed, skipped, failingTests, sources } = done.summary!.testReport!;
    expect(JSON.parse(file('test-report.json'))).toMatchObject({ format, passed, failed, skipped, failingTests, sources });
    expect(JSON.parse(file('pull-request.json'))).toMatchObject({
      provider: 'git',
      number: done.summary!.pullRequest!.number,
      state: 'open',
      branch: done.summary!.branch,
      headCommit: done.summary!.headCommit,
    });
    // The report lists the other evidence files (not itself) and the provenance.
    const report = JSON.parse(file('report.json')) as { summary: { evidence: Array<{ name: string; sha256: string }>; provenance: unknown } };
    expect(report.summary.evidence.map((e) => e.name)).toEqual(evidence.slice(1).map((e) => e.name));
    expect(report.summary.evidence.map((e) => e.sha256)).toEqual(evidence.slice(1).map((e) => e.sha256));

    const p = done.summary!.provenance!;
    expect(p.workerIdentity).toMatch(/^\d+@\S+$/);
    expect(p.workerVersion).toBe('0.1.0');
    expect(p.temporalRunId).toMatch(/^[0-9a-f-]{36}$/);
    expect(p.toolVersions).toMatchObject({ node: process.version, agent_command: 'node "$AGENT_SCRIPT"' });
    expect(p.toolVersions.git).toMatch(/^\d+\.\d+/);
    if (done.summary!.sandbox === 'bubblewrap') expect(p.toolVersions.bubblewrap).toMatch(/^\d+\.\d+/);
    expect(report.summary.provenance).toEqual({ ...p, $typeName: undefined });
  });

  it('a failing run, handed off: the handoff bundle is listed with its digest; nothing was pushed, so no diff', async () => {
    await applySample(h.acme, origin, { testCommand: 'npm test; exit 1' }, 'failing');
    const { done } = await run('failing', 'CALC-2');
    expect(done.status).toBe(RunStatus.HANDED_OFF);
    const evidence = done.summary!.evidence;
    expect(evidence.map((e) => [e.kind, e.name])).toEqual([
      ['report', 'report.json'],
      ['transcript', 'transcripts/install.log'],
      ['transcript', 'transcripts/agent.log'],
      ['transcript', 'transcripts/test.log'],
      ['test_report', 'test-report.json'],
      ['handoff_bundle', 'handoff.tar.gz'],
    ]);
    expectStored(evidence);
    const bundle = evidence.at(-1)!;
    expect(bundle).toMatchObject({ uri: done.summary!.handoffUri, sha256: done.summary!.handoffSha256, mediaType: 'application/gzip' });
    expect(stored(bundle).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(done.summary!.provenance!.temporalRunId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('evidence files of a run with a local preview', () => {
  let h: Harness | undefined;
  beforeAll(async () => {
    h = await startHarnessWithRouter({ worker: true });
  });
  afterAll(() => h?.stop());

  it("lists the preview check and a copy of the preview's transcript, which keeps its digest when the preview stops", async () => {
    await applySample(h!.acme, sampleOrigin(h!), { preview: { ...SAMPLE_PREVIEW, ttlSeconds: 600 } });
    const { run } = await h!.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    await watchAll(h!.acme, run!.id);
    const done = (await h!.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.COMPLETED);
    const evidence = done.summary!.evidence;
    expect(evidence.map((e) => e.name)).toEqual([
      'report.json',
      'transcripts/install.log',
      'transcripts/agent.log',
      'transcripts/test.log',
      'transcripts/preview-at-report.log',
      'diff.patch',
      'test-report.json',
      'pull-request.json',
      'preview-check.json',
    ]);
    expectStored(evidence);
    const check = JSON.parse(stored(evidence.find((e) => e.kind === 'preview_check')!).toString('utf8')) as Record<string, string>;
    expect(check).toMatchObject({ provider: 'local', url: done.summary!.previewUrl, aliasUrl: done.summary!.previewAliasUrl, healthPath: '/health' });
    expect(check.health).toMatch(/^200 .*\/health/);

    // The worker's shutdown stops the preview, which stores its live transcript once more: the copy is untouched.
    const copy = evidence.find((e) => e.name === 'transcripts/preview-at-report.log')!;
    const live = copy.uri.replace(/preview-at-report\.log$/, 'preview.log');
    await h!.stopWorkers();
    expect(readFileSync(fileURLToPath(live), 'utf8')).toContain('[ameide] stopped');
    expectStored(evidence);
  });
});
