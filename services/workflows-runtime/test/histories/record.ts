/**
 * Records the histories that test/unit/replay.test.ts replays, with the code of this checkout:
 *
 *   pnpm exec tsx services/workflows-runtime/test/histories/record.ts <version>
 *
 * On an ephemeral stack it runs the sample definition twice (one run completes; one, whose test
 * command fails, is handed off), then writes the history of every closed workflow (the two runs and
 * their follow-ups) to `test/histories/<version>/`, gzipped JSON. Machine paths in the payloads (this
 * checkout, the worker's workspace directory) are replaced by neutral ones first: a replay never reads
 * them. Record a new version before a change that makes running workflows take another path (behind a
 * `patched()` id), and keep the older versions: runs started on them may still be in flight.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { loadStackConfig, stackDir } from '@ameide/config';
import { RunStatus } from '@ameide/contracts';
import { createOrigin, sampleDefinition, startStack, SAMPLE_REPO } from '@ameide/devstack';
import { createWorkflowServiceClient } from '@ameide/sdk';

const CHECKOUT = resolve(fileURLToPath(new URL('../../../../', import.meta.url)));

/** Every string in the history, payloads (base64 JSON) included, with machine paths made neutral. */
function scrub(value: unknown): unknown {
  const text = (s: string) =>
    s
      .split(CHECKOUT)
      .join('/srv/ameide')
      .replace(/\/var\/tmp\/ameide-[0-9a-f]+/g, '/var/lib/ameide');
  if (typeof value === 'string') return text(value);
  if (Array.isArray(value)) return value.map(scrub);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = k === 'data' && typeof v === 'string' ? Buffer.from(text(Buffer.from(v, 'base64').toString()), 'utf8').toString('base64') : scrub(v);
    }
    return out;
  }
  return value;
}

async function main(): Promise<void> {
  const version = process.argv[2];
  if (!version || !/^[a-z0-9-]+$/.test(version)) throw new Error('usage: record.ts <version> (lowercase letters, digits and "-")');
  const out = fileURLToPath(new URL(`./${version}/`, import.meta.url));
  mkdirSync(out, { recursive: true });
  const cfg = loadStackConfig();
  const stack = await startStack(cfg, { name: 'record-histories', ephemeral: true });
  try {
    const api = createWorkflowServiceClient({ baseUrl: stack.apiUrl, token: stack.devToken });
    const def = sampleDefinition(createOrigin(SAMPLE_REPO, join(stackDir(cfg, 'record-histories'), 'origin.git')));
    await api.applyDefinition(def);
    await api.applyDefinition({ ...def, name: 'tests-fail', spec: { ...def.spec!, testCommand: 'echo "not ok 1 - multiply" && exit 1' } });
    const names = new Map<string, string>();
    for (const [name, definition, expected] of [
      ['completed', def.name, RunStatus.COMPLETED],
      ['tests-fail', 'tests-fail', RunStatus.HANDED_OFF],
    ] as const) {
      const started = (await api.startWorkflowRun({ definition, workItems: [{ id: `REC-${name}`, title: 'Add a multiply function' }] })).run!;
      for await (const res of api.watchWorkflowRun({ id: started.id })) void res;
      const run = (await api.getWorkflowRun({ id: started.id })).run!;
      if (run.status !== expected) throw new Error(`the ${name} run ended ${RunStatus[run.status]}, not ${RunStatus[expected]}: ${run.error}`);
      names.set(run.id, name);
    }
    const client = new Client({ connection: await Connection.connect({ address: stack.temporalAddress }), namespace: cfg.temporalNamespace });
    // The follow-ups close shortly after the runs.
    const deadline = Date.now() + 30_000;
    let written = 0;
    while (written < 2 * names.size && Date.now() < deadline) {
      written = 0;
      for await (const wf of client.workflow.list()) {
        const runId = [...names.keys()].find((id) => wf.workflowId.endsWith(id));
        if (!runId || wf.status.name === 'RUNNING') continue;
        const kind = wf.type === 'runFollowup' ? 'followup' : 'run';
        const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
        writeFileSync(join(out, `${kind}-${names.get(runId)}.json.gz`), gzipSync(JSON.stringify(scrub(JSON.parse(historyToJSON(history))))));
        written++;
      }
      if (written < 2 * names.size) await new Promise((r) => setTimeout(r, 1000));
    }
    console.log(`wrote ${written} histories to ${out}`);
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
