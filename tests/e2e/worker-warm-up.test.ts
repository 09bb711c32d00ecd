/**
 * A worker warms itself up as it starts (services/workflows-runtime/src/worker.ts): a workflow of its
 * own on its task queue, whose local activity calls the service, so that the first run after a start
 * does not pay for a cold worker. Against a real service and Temporal server; the worker's `warmUp()`
 * answer is the line its log prints when it is ready (what `make up` waits for).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { createCodingWorker, type CodingWorker } from '../../services/workflows-runtime/src/index.js';
import { startHarness, type Harness } from '../support/harness.js';

describe('a worker warming up as it starts', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.stop());

  /** Runs a worker of the harness for `body`, then shuts it down. */
  async function withWorker<T>(body: (w: CodingWorker) => Promise<T>): Promise<T> {
    const w = await createCodingWorker(h.workerConfig());
    const running = w.run();
    try {
      return await body(w);
    } finally {
      w.shutdown();
      await running;
      await w.connection.close();
    }
  }

  it('runs its warm-up workflow on its task queue, whose local activity reaches the service', async () => {
    const said = await withWorker((w) => w.warmUp());
    expect(said).toMatch(/^warmed up in \d+ ms \(the service answered; (disk image ready|no run disks)\)$/);
    // The warm-up is an ordinary workflow of the queue, completed, as ops see it in the Web UI.
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    try {
      const client = new Client({ connection });
      const query = `WorkflowType = 'workerWarmUp' AND TaskQueue = '${h.taskQueue}'`;
      let listed: string[] = [];
      for (let i = 0; i < 50 && !listed.length; i++) {
        listed = [];
        for await (const wf of client.workflow.list({ query })) listed.push(wf.status.name);
        if (!listed.length) await new Promise((r) => setTimeout(r, 100));
      }
      expect(listed).toEqual(['COMPLETED']);
    } finally {
      await connection.close();
    }
  });

  it('with the service away, still warms up its workflow side and says that the service did not answer', async () => {
    await h.stopService();
    try {
      const said = await withWorker((w) => w.warmUp());
      expect(said).toMatch(/^warmed up in \d+ ms \(the service did not answer \(.*ECONNREFUSED.*\); /);
    } finally {
      await h.startService();
    }
  });

  it('with nothing polling its queue, goes on without the warm-up after its timeout and says so', async () => {
    const w = await createCodingWorker(h.workerConfig());
    const running = w.run();
    w.shutdown();
    await running;
    try {
      expect(await w.warmUp(500)).toBe('warm-up skipped: no answer within 0.5s');
    } finally {
      await w.connection.close();
    }
  });
});
