/**
 * What ops see in the Temporal Web UI (the dev server's, `--ui-port`), in a real Chromium driven by
 * playwright-core: a run found by its work item (`AmeideWorkItemIds = '…'` in the list's URL), the
 * list showing the Ameide search attributes as columns, the run's page with its summary (work item
 * and title) and each activity named by its phase, and a handed-off run told apart from a failed one.
 * Needs Debian's chromium (`make tools` installs it); skips, saying so, without it.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { RunStatus } from '@ameide/contracts';
import { runsOpen } from '../../packages/cli/src/open.js';
import { applySample, MULTIPLY, sampleOrigin, startHarness, watchAll, type Harness } from '../support/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const NAMESPACE = 'default';
/** Visibility is eventually consistent, and the UI renders after its own fetches. */
const UI_WAIT_MS = 30_000;

describe.skipIf(!HAVE_CHROMIUM)(`the Temporal Web UI${HAVE_CHROMIUM ? '' : ` (skipped: no chromium at ${CHROMIUM}; \`make tools\` installs it)`}`, () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;
  let shots: string;
  const ui = () => inject('temporalUiUrl');
  const suffix = Date.now().toString(36);

  beforeAll(async () => {
    h = await startHarness({ worker: true });
    const origin = sampleOrigin(h);
    await applySample(h.acme, origin);
    await applySample(h.acme, origin, { testCommand: 'echo "1 failing: expected 42"; exit 3' }, 'sample-failing');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1920, height: 1000 } });
    shots = join(h.dir, 'screenshots');
    mkdirSync(shots, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await h?.stop();
  });

  /** Runs a work item to its end with a definition; returns the run. */
  async function runToEnd(definition: string, workItem: typeof MULTIPLY) {
    const { run } = await h.acme.startWorkflowRun({ definition, workItems: [workItem] });
    await watchAll(h.acme, run!.id);
    return (await h.acme.getWorkflowRun({ id: run!.id })).run!;
  }

  /** The text of the page's main area and of the frames in it (the UI renders user metadata, markdown, in frames). */
  async function shownText(): Promise<string> {
    const frames = await Promise.all(
      page.frames().map((f) =>
        f
          .locator('body')
          .innerText()
          .catch(() => ''),
      ),
    );
    return [await page.locator('main').innerText(), ...frames].join('\n');
  }

  /** What `ameide runs open <run>` prints, for this stack's Web UI. */
  async function openUrl(runId: string): Promise<string> {
    const lines: string[] = [];
    expect(await runsOpen(h.acme, runId, { out: (l) => lines.push(l) }, { AMEIDE_TEMPORAL_UI_URL: ui() })).toBe(0);
    return lines.join('\n');
  }

  /** The workflow list filtered by a work item, as an operator opens it from a link. */
  async function openList(workItemId: string) {
    const query = `AmeideWorkItemIds = '${workItemId}'`;
    await page.goto(`${ui()}/namespaces/${NAMESPACE}/workflows?query=${encodeURIComponent(query)}`);
  }

  /** The list's row of a workflow, once visibility has it (the list is loaded again until then). */
  async function rowOf(workflowId: string, workItemId: string) {
    const row = page.getByTestId('workflows-summary-configurable-table-row').filter({ hasText: workflowId });
    for (let attempt = 1; ; attempt++) {
      try {
        await row.first().waitFor({ state: 'visible', timeout: 10_000 });
        return row;
      } catch (err) {
        if (attempt >= 3) {
          await page.screenshot({ path: join(shots, 'not-listed.png'), fullPage: true });
          throw new Error(`the Web UI did not list ${workflowId} at ${page.url()}: ${(err as Error).message}`);
        }
        await openList(workItemId);
      }
    }
  }

  it('lists a run by its work item with the Ameide columns, and its page shows its summary and the phase of each activity', async () => {
    const workItem = { ...MULTIPLY, id: `UI-${suffix}` };
    const run = await runToEnd('sample', workItem);
    expect(run.status).toBe(RunStatus.COMPLETED);

    await openList(workItem.id);
    // The list shows no user metadata (its rows come from visibility): ops add the search attributes
    // as columns (kept in the browser), as done here through the table's own settings.
    await page.getByTestId('workflows-summary-table-configuration-button').click();
    for (const column of ['AmeideWorkItemIds', 'AmeideDefinitionName', 'AmeideRunStatus', 'AmeideRunPhase'])
      await page.getByTestId(`orderable-list-item-${column}-add-button`).click();
    for (const column of ['Run ID', 'Type']) await page.getByTestId(`orderable-list-item-${column}-remove-button`).click();
    await page.getByTestId('drawer-close-button').click();
    await page.getByText('Configure Workflows Table').waitFor({ state: 'hidden' });
    const row = await rowOf(run.workflowId, workItem.id);
    await expect.poll(() => row.innerText(), { timeout: UI_WAIT_MS }).toMatch(new RegExp(`${workItem.id}[\\s\\S]*sample[\\s\\S]*completed[\\s\\S]*done`));
    await page.screenshot({ path: join(shots, 'workflow-list.png'), fullPage: true });

    // The run's page, where `ameide runs open <short id>` points: its user metadata (summary with
    // the work item's title, details with the ids).
    const url = await openUrl(run.id.slice(0, 8));
    expect(url).toBe(`${ui()}/namespaces/${NAMESPACE}/workflows/${run.workflowId}`);
    await page.goto(url);
    await page.getByText('User Metadata', { exact: true }).click();
    const main = page.locator('main');
    await expect.poll(() => shownText(), { timeout: UI_WAIT_MS }).toContain(`${workItem.id} ${workItem.title} · sample, manual`);
    const text = await shownText();
    expect(text).toContain(`run: ${run.id}`);
    expect(text).toContain(`${workItem.id}: ${workItem.title}`);
    await page.screenshot({ path: join(shots, 'run-metadata.png'), fullPage: true });

    // Its timeline names each activity with its phase.
    await page.getByText('Timeline', { exact: true }).first().click();
    for (const phase of ['install', 'agent', 'test', 'publish'])
      await expect.poll(() => main.innerText(), { timeout: UI_WAIT_MS }).toMatch(new RegExp(`• ${phase} phase`));
    await expect(
      page
        .getByText(/runCommandPhase\s*•\s*agent phase/)
        .first()
        .isVisible(),
    ).resolves.toBe(true);
    await page.screenshot({ path: join(shots, 'run-timeline.png'), fullPage: true });
  });

  it('tells a handed-off run from a failed one: its status column, memo and current details say handed off', async () => {
    const workItem = { ...MULTIPLY, id: `UI-H-${suffix}` };
    const run = await runToEnd('sample-failing', workItem);
    expect(run.status).toBe(RunStatus.HANDED_OFF);

    // The columns chosen in the first test stay (the browser keeps them).
    await openList(workItem.id);
    const row = await rowOf(run.workflowId, workItem.id);
    await expect.poll(() => row.innerText(), { timeout: UI_WAIT_MS }).toMatch(/Failed[\s\S]*handed_off[\s\S]*test/i);
    await page.screenshot({ path: join(shots, 'workflow-list-handed-off.png'), fullPage: true });

    await page.goto(await openUrl(run.id));
    const main = page.locator('main');
    await page.getByText('Memo', { exact: true }).click();
    await expect.poll(() => shownText(), { timeout: UI_WAIT_MS }).toMatch(/"runStatus":\s*"handed_off"/);
    await page.getByText('User Metadata', { exact: true }).click();
    // Current details come from the worker (a query), once the page has asked.
    await expect.poll(() => shownText(), { timeout: UI_WAIT_MS }).toMatch(/handed off: test phase failed: test command failed with exit code 3/);
    await page.screenshot({ path: join(shots, 'run-handed-off.png'), fullPage: true });
  });
});
