/**
 * Recorded histories of real runs, replayed against today's workflow code: a worker that is upgraded
 * while runs are in flight must carry them on from their histories. A change that would make one of
 * them take another path (a non-determinism error, which strands the run) fails here.
 *
 * `test/histories/<version>/` holds the histories of two runs of the sample definition on a full stack
 * (one completed, one whose tests failed and that was handed off) and of their follow-ups, recorded
 * with the code of that version by `test/histories/record.ts` (machine paths in their payloads made
 * neutral).
 * - `before-status-batches`: each status update in its own `recordStatus` activity (before the
 *   `status-update-batches` patch);
 * - `status-batches`: updates in batches through `recordStatuses`;
 * - `evidence-local`: the report phase gathers its evidence in a local activity, as it writes the
 *   report (the `report-evidence-local` patch), not in a regular one;
 * - `batches-settled`: a batch holds what the workflow posted while handling one activation, and the
 *   report phase's updates leave with the run's end (the `status-batches-settled` patch).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflowCode, makeTelemetryFilterString, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { LOCAL_EVIDENCE_PATCH, SETTLED_BATCHES_PATCH, STATUS_BATCHES_PATCH } from '../../src/workflow/run.js';

const workflowsPath = fileURLToPath(new URL('../../src/workflows.ts', import.meta.url));
const historiesDir = fileURLToPath(new URL('../histories/', import.meta.url));
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

interface HistoryEvent {
  eventType: string;
  activityTaskScheduledEventAttributes?: { activityType: { name: string } };
  markerRecordedEventAttributes?: { markerName: string; details?: Record<string, { payloads?: Array<{ data: string }> }> };
}

const load = (version: string, file: string) =>
  JSON.parse(gunzipSync(readFileSync(`${historiesDir}${version}/${file}`)).toString()) as { events: HistoryEvent[] };
const activities = (h: { events: HistoryEvent[] }) => h.events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType.name ?? []);
/** The patch ids a history's markers record (the SDK's patch markers carry `{"id": …}` in their `patch-data` detail). */
const patches = (h: { events: HistoryEvent[] }) =>
  h.events.flatMap((e) => {
    const marker = e.markerRecordedEventAttributes;
    const data = marker?.markerName === 'core_patch' ? marker.details?.['patch-data']?.payloads?.[0]?.data : undefined;
    return data ? [(JSON.parse(Buffer.from(data, 'base64').toString()) as { id: string }).id] : [];
  });

const versions = readdirSync(historiesDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('recorded run histories replay on the current workflow code', () => {
  let bundle: WorkflowBundleWithSourceMap;
  beforeAll(async () => {
    try {
      Runtime.install({ logger: quiet, telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } } });
    } catch {
      /* installed already in this process */
    }
    bundle = await bundleWorkflowCode({ workflowsPath, logger: quiet });
  }, 120_000);

  it('holds the histories of each way of sending status updates, and of both ways of gathering evidence', () => {
    expect(versions).toEqual(['batches-settled', 'before-status-batches', 'evidence-local', 'status-batches']);
    const before = load('before-status-batches', 'run-completed.json.gz');
    const now = load('status-batches', 'run-completed.json.gz');
    // One activity per update and no patch marker, against batches behind the patch.
    expect(activities(before).filter((a) => a === 'recordStatus').length).toBeGreaterThan(10);
    expect(activities(before)).not.toContain('recordStatuses');
    expect(patches(before)).not.toContain(STATUS_BATCHES_PATCH);
    expect(activities(now)).toContain('recordStatuses');
    expect(activities(now)).not.toContain('recordStatus');
    expect(patches(now)).toContain(STATUS_BATCHES_PATCH);
    // Evidence in a regular activity before the patch; after it, no such activity and the patch's marker.
    const local = load('evidence-local', 'run-completed.json.gz');
    expect(activities(now)).toContain('writeEvidence');
    expect(patches(now)).not.toContain(LOCAL_EVIDENCE_PATCH);
    expect(activities(local)).not.toContain('writeEvidence');
    expect(patches(local)).toEqual(expect.arrayContaining([STATUS_BATCHES_PATCH, LOCAL_EVIDENCE_PATCH]));
    expect(patches(local)).not.toContain(SETTLED_BATCHES_PATCH);
    // Batches cut once an activation's work has settled, behind their own patch.
    const settled = load('batches-settled', 'run-completed.json.gz');
    expect(patches(settled)).toEqual(expect.arrayContaining([STATUS_BATCHES_PATCH, LOCAL_EVIDENCE_PATCH, SETTLED_BATCHES_PATCH]));
  });

  for (const version of versions) {
    for (const file of readdirSync(`${historiesDir}${version}`).sort()) {
      it(`${version}/${file}`, async () => {
        const history = load(version, file);
        // Throws (a DeterminismViolationError, or the failure that stopped the replay) when today's
        // code would not take the recorded path.
        await Worker.runReplayHistory({ workflowBundle: bundle, replayName: `${version}/${file}` }, history);
        expect(history.events.at(-1)!.eventType).toMatch(/^EVENT_TYPE_WORKFLOW_EXECUTION_(COMPLETED|FAILED)$/);
      }, 60_000);
    }
  }
});
