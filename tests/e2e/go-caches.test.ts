import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStackConfig } from '@ameide/config';
import { Phase, RunStatus, type Run } from '@ameide/contracts';
import { createOrigin, GO_SAMPLE_REPO, goSampleDefinition, goToolchain, SCRIPTED_AGENT } from '@ameide/devstack';
import type { WorkflowServiceClient } from '@ameide/sdk';
import { startHarness, TEST_POLICY, watchAll, type Harness } from '../support/harness.js';

const GO = goToolchain(loadStackConfig().path);
if (!GO) console.log('go-caches.test.ts: skipped, `go` is not on PATH (the Go sample needs a Go toolchain)');

/** A run of the Go sample for `client`'s tenant, followed to its end. */
async function goRun(client: WorkflowServiceClient, id: string): Promise<Run> {
  const { run } = await client.startWorkflowRun({
    definition: 'go-sample',
    workItems: [
      { id, title: 'Add a multiply function', description: 'Users need to multiply.', acceptanceCriteria: ['Multiply(6, 7) returns 42'], contextLinks: [] },
    ],
  });
  await watchAll(client, run!.id);
  return (await client.getWorkflowRun({ id: run!.id })).run!;
}
const testOutput = (run: Run) => run.phases.find((p) => p.phase === Phase.TEST)!.outputTail;

/**
 * The tenant's Go caches (GOCACHE, GOMODCACHE) on the worker's disk, mounted into the sandbox: a
 * later run of the same tenant reuses the build and test results of an earlier one (the checkout is
 * always at the same path in the sandbox), another tenant starts from its own, empty cache.
 */
describe.skipIf(!GO)(`Go caches per tenant${GO ? '' : ' (skipped: `go` is not on PATH)'}`, () => {
  let h: Harness;
  beforeAll(async () => {
    // The operator allows the Go toolchain as a read-only path, besides the scripted agents' folder.
    const policy = { AMEIDE_SANDBOX_READ_ONLY_PATHS: `${TEST_POLICY.AMEIDE_SANDBOX_READ_ONLY_PATHS},${GO!.goroot}` };
    expect(dirname(SCRIPTED_AGENT)).toBe(TEST_POLICY.AMEIDE_SANDBOX_READ_ONLY_PATHS);
    h = await startHarness({ worker: true, serviceEnv: policy, workerEnv: policy });
    for (const [client, tenant] of [
      [h.acme, 'acme'],
      [h.globex, 'globex'],
    ] as const) {
      const def = goSampleDefinition(createOrigin(GO_SAMPLE_REPO, join(h.dir, `go-origin-${tenant}.git`)), GO!.goroot, 'go-sample');
      await client.applyDefinition(def);
    }
  });
  afterAll(() => h?.stop());

  it("a tenant's second run finds its test results cached; another tenant's first run does not", { timeout: 600_000 }, async () => {
    const first = await goRun(h.acme, 'GO-1');
    expect(first.status, first.error).toBe(RunStatus.COMPLETED);
    expect(testOutput(first)).toMatch(/^ok\s+example\.com\/go-sample\s+\d/m);
    expect(testOutput(first)).not.toContain('(cached)');

    // A new run, a new worktree on the worker's disk; the agent makes the same change: cached.
    const second = await goRun(h.acme, 'GO-2');
    expect(second.status, second.error).toBe(RunStatus.COMPLETED);
    expect(testOutput(second)).toMatch(/^ok\s+example\.com\/go-sample\s+\(cached\)/m);

    // Globex has its own cache: its first run builds and tests for real.
    const other = await goRun(h.globex, 'GO-1');
    expect(other.status, other.error).toBe(RunStatus.COMPLETED);
    expect(testOutput(other)).toMatch(/^ok\s+example\.com\/go-sample\s+\d/m);
    expect(testOutput(other)).not.toContain('(cached)');

    // Each tenant's cache lies in its own directory on the worker's disk.
    const caches = join(h.dir, 'workspaces', 'caches');
    for (const tenant of ['acme', 'globex']) expect(existsSync(join(caches, tenant, 'go', 'build', 'README')), tenant).toBe(true);
    expect(readdirSync(caches).sort()).toEqual(['acme', 'globex']);
  });
});
