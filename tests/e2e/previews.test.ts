import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Phase, PhaseState, RunStatus, StatusUpdateKind } from '@ameide/contracts';
import { fetchPreview, SAMPLE_PREVIEW } from '@ameide/devstack';
import { previewWorkflowId } from '@ameide/temporal';
import { applySample, MULTIPLY, runCli, sampleOrigin, startHarnessWithRouter, watchAll, type Harness } from '../support/harness.js';
import { liveProcesses } from '../support/processes.js';

const get = (url: string, routerPort: number) => fetchPreview(url, routerPort);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

describe('previews of real runs, behind the preview router', () => {
  let h: Harness;
  let router: number;
  const TTL = 20;

  beforeAll(async () => {
    h = await startHarnessWithRouter({ worker: true });
    router = h.app.preview!.port;
    const origin = sampleOrigin(h);
    await applySample(h.acme, origin, { preview: { ...SAMPLE_PREVIEW, ttlSeconds: TTL } });
    // A preview whose server never listens: its health check never answers.
    const stuck = 'echo "compiling the preview"; echo "Error: listen EADDRINUSE" >&2; sleep 60';
    await applySample(h.acme, origin, { preview: { command: stuck, healthPath: '/health', readyTimeoutSeconds: 3 } }, 'sample-unhealthy');
    // A platform deploy: prints the URLs it made, in the documented line format.
    await applySample(
      h.acme,
      origin,
      {
        preview: {
          provider: 'command',
          command: 'echo "deploying $AMEIDE_HEAD_COMMIT"; echo "AMEIDE_PREVIEW_URL=https://calc-$AMEIDE_RUN_ID.pages.example/"',
          aliasCommand: 'echo "AMEIDE_PREVIEW_ALIAS_URL=https://calc-1.pages.example/?deploy=$AMEIDE_PREVIEW_URL"',
        },
      },
      'sample-deployed',
    );
  });
  afterAll(() => h?.stop());

  const runOf = async (item: string, planId?: string) => {
    const { run } = await h.acme.startWorkflowRun(planId ? { planId } : { definition: 'sample', workItems: [{ ...MULTIPLY, id: item }] });
    const updates = await watchAll(h.acme, run!.id);
    return { run: (await h.acme.getWorkflowRun({ id: run!.id })).run!, updates };
  };

  it('serves each run at its own URL and the work item at an alias that follows the newest run; a preview stops at its TTL', async () => {
    const first = await runOf('CALC-1');
    expect(first.run.status).toBe(RunStatus.COMPLETED);
    const live = first.updates.find((u) => u.kind === StatusUpdateKind.PREVIEW_LIVE)!;
    const runUrl = first.run.summary!.previewUrl;
    const alias = first.run.summary!.previewAliasUrl;
    expect(runUrl).toBe(`http://run-${first.run.id.slice(0, 8)}.acme.preview.localhost:${router}/`);
    expect(alias).toBe(`http://calc-1.acme.preview.localhost:${router}/`);
    expect(live.attributes).toMatchObject({ url: runUrl, alias_url: alias });
    expect(live.attributes['health']).toMatch(/^200 .*\/health/);
    expect(first.run.phases.find((p) => p.phase === Phase.PREVIEW)!.state).toBe(PhaseState.SUCCEEDED);
    // The page shows the agent's change: the preview serves the run's own checkout.
    const page = await get(runUrl, router);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<code>multiply(6, 7)</code></td><td>42');
    expect((await get(alias, router)).body).toBe(page.body);

    // Three previews at once: two more work items, each at its own alias.
    const others = await Promise.all(['CALC-2', 'CALC-3'].map((id) => runOf(id)));
    for (const o of others) {
      expect(o.run.status).toBe(RunStatus.COMPLETED);
      expect((await get(o.run.summary!.previewAliasUrl, router)).status).toBe(200);
      expect((await get(o.run.summary!.previewUrl, router)).status).toBe(200);
    }
    expect((await get(runUrl, router)).status).toBe(200);
    expect((await h.acme.listPreviews({ state: 'live' })).previews).toHaveLength(3);

    // The rerun of CALC-1: the alias moves to it at once, the first run's own URL still answers.
    const second = await runOf('CALC-1', first.run.planId);
    expect(second.run.summary!.previewAliasUrl).toBe(alias);
    const previews = (await h.acme.listPreviews({ workItemId: 'CALC-1' })).previews;
    expect(previews.find((p) => p.runId === second.run.id)).toMatchObject({ state: 'live', aliased: true });
    expect(previews.find((p) => p.runId === first.run.id)).toMatchObject({ state: 'live', aliased: false });
    expect((await get(runUrl, router)).status).toBe(200);
    expect((await get(second.run.summary!.previewUrl, router)).status).toBe(200);

    // At the first preview's TTL its process and its route go; the alias stays with the rerun.
    const stopped = await until(
      'the first preview to stop',
      async () => (await h.acme.listPreviews({ runId: first.run.id })).previews.find((p) => p.state === 'stopped'),
      (TTL + 40) * 1000,
    );
    expect(stopped.stopReason).toBe('expired');
    const gone = await get(runUrl, router);
    expect(gone.status).toBe(404);
    expect(gone.body).toContain('stopped: expired');
    expect((await get(alias, router)).status).toBe(200);

    // The CLI lists both: the first stopped, the rerun's live and aliased.
    const listed = (await runCli(h, 'previews', 'list', '--work-item', 'CALC-1')).stdout;
    const lines = listed.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^RUN +WORK ITEM +PROVIDER +STATE +SINCE \/ WHY +URL +ALIAS$/);
    expect(lines.find((l) => l.startsWith(first.run.id.slice(0, 8)))).toMatch(/CALC-1\s+local\s+stopped\s+expired, \d+[smhd] ago\s/);
    const newest = lines.find((l) => l.startsWith(second.run.id.slice(0, 8)));
    expect(newest).toMatch(/\slive\s+since \d+[smhd] ago\s/);
    expect(newest!.endsWith(` ${alias}`)).toBe(true);
  });

  it("registers a deployed preview at the URLs its commands print; the router sends the run's host there", async () => {
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample-deployed', workItems: [{ ...MULTIPLY, id: 'CALC-8' }] });
    const updates = await watchAll(h.acme, run!.id);
    const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.COMPLETED);
    expect(done.summary!.previewUrl).toBe(`https://calc-${run!.id}.pages.example/`);
    // The alias command is told where the deploy went.
    expect(done.summary!.previewAliasUrl).toBe(`https://calc-1.pages.example/?deploy=https://calc-${run!.id}.pages.example/`);
    expect(updates.find((u) => u.kind === StatusUpdateKind.PREVIEW_LIVE)!.attributes).toMatchObject({ url: done.summary!.previewUrl });
    const [preview] = (await h.acme.listPreviews({ runId: run!.id })).previews;
    expect(preview).toMatchObject({ provider: 'command', state: 'live', url: done.summary!.previewUrl });
    const redirect = await get(`http://run-${run!.id.slice(0, 8)}.acme.preview.localhost:${router}/`, router);
    expect(redirect.status).toBe(302);
  });

  it('fails the preview phase with the log tail when the preview never gets healthy, and hands the run off', async () => {
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample-unhealthy', workItems: [{ ...MULTIPLY, id: 'CALC-9' }] });
    await watchAll(h.acme, run!.id);
    const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.HANDED_OFF);
    const phase = done.phases.find((p) => p.phase === Phase.PREVIEW)!;
    expect(phase.state).toBe(PhaseState.FAILED);
    expect(done.error).toMatch(/^preview phase failed: preview failed: .*\/health/);
    expect(phase.outputTail).toContain('Error: listen EADDRINUSE');
    expect(done.summary!.handoffUri).toMatch(/handoff\.tar\.gz$/);
    expect(done.phases.map((p) => p.phase)).not.toContain(Phase.PULL_REQUEST);
    expect((await h.acme.listPreviews({ runId: run!.id })).previews.filter((p) => p.state === 'live')).toEqual([]);
  });
});

describe('a worker that stops takes its previews down cleanly', () => {
  let h: Harness;
  let router: number;
  let temporal: Connection;

  beforeAll(async () => {
    h = await startHarnessWithRouter({ worker: true });
    router = h.app.preview!.port;
    await applySample(h.acme, sampleOrigin(h), { preview: { ...SAMPLE_PREVIEW, ttlSeconds: 3600 } });
    temporal = await Connection.connect({ address: inject('temporalAddress') });
  });
  afterAll(async () => {
    await temporal?.close();
    await h?.stop();
  });

  it('stops the preview process, drops its route and ends its TTL workflow at once; a new worker serves new previews', async () => {
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    await watchAll(h.acme, run!.id);
    const url = (await h.acme.getWorkflowRun({ id: run!.id })).run!.summary!.previewUrl;
    expect((await get(url, router)).status).toBe(200);
    const previewWorkflow = new Client({ connection: temporal }).workflow.getHandle(previewWorkflowId(run!.id));
    expect((await previewWorkflow.describe()).status.name).toBe('RUNNING');
    const previewProcesses = () => liveProcesses((p) => p.text.includes(`AMEIDE_RUN_ID=${run!.id}`));
    expect(previewProcesses().length).toBeGreaterThan(0);

    await h.stopWorkers();
    expect(previewProcesses()).toEqual([]);
    const [stopped] = (await h.acme.listPreviews({ runId: run!.id })).previews;
    expect(stopped).toMatchObject({ state: 'stopped', stopReason: 'the worker stopped' });
    const gone = await get(url, router);
    expect(gone.status).toBe(404);
    expect(gone.body).toContain('stopped: the worker stopped');
    // The preview's workflow hears of it and ends now, not in an hour; the stop it makes when a worker
    // is back changes nothing.
    await h.startWorker();
    expect(await previewWorkflow.result()).toEqual({ reason: 'the worker stopped' });
    expect((await h.acme.listPreviews({ runId: run!.id })).previews[0]!.stopReason).toBe('the worker stopped');

    const again = (await h.acme.startWorkflowRun({ definition: 'sample', workItems: [{ ...MULTIPLY, id: 'CALC-4' }] })).run!;
    await watchAll(h.acme, again.id);
    expect((await get((await h.acme.getWorkflowRun({ id: again.id })).run!.summary!.previewAliasUrl, router)).status).toBe(200);
  });
});
