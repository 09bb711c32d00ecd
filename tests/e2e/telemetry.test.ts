import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { loadStackConfig } from '@ameide/config';
import { RunStatus } from '@ameide/contracts';
import { createDatabase, createOrigin, SAMPLE_REPO, startStack, type RunningStack } from '@ameide/devstack';
import { createWorkflowServiceClient } from '@ameide/sdk';
import { applySample, MULTIPLY, watchAll } from '../support/harness.js';

/**
 * Contract test of OTLP/HTTP export: the service and the worker run as real processes (as `make up`
 * starts them) with the standard OTEL_EXPORTER_OTLP_ENDPOINT set; a minimal OTLP/HTTP receiver
 * records what they post to /v1/traces.
 */
const received: Buffer[] = [];
const receiver = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.url === '/v1/traces') received.push(Buffer.concat(chunks));
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
});
let stack: RunningStack;

beforeAll(async () => {
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const home = join(inject('scratchDir'), `otel-${Date.now()}`);
  // Read by the child processes the stack starts (this file runs in its own test worker process).
  Object.assign(process.env, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  stack = await startStack(
    {
      ...loadStackConfig({ AMEIDE_HOME: home }),
      databaseUrl: await createDatabase(inject('postgresUrl'), `otel_${Date.now()}`),
      temporalAddress: inject('temporalAddress'),
    },
    { name: 'otel', ephemeral: true },
  );
});
afterAll(async () => {
  await stack?.stop();
  receiver.close();
});

it('exports traces from the service and the worker when OTLP is configured', async () => {
  const api = createWorkflowServiceClient({ baseUrl: stack.apiUrl, token: stack.devToken });
  const origin = createOrigin(SAMPLE_REPO, join(inject('scratchDir'), `otel-origin-${Date.now()}.git`));
  await applySample(api, origin);
  const { run } = await api.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
  await watchAll(api, run!.id);
  expect((await api.getWorkflowRun({ id: run!.id })).run!.status).toBe(RunStatus.COMPLETED);

  const deadline = Date.now() + 20_000;
  const all = () => Buffer.concat(received).toString('latin1');
  const want = ['ameide-workflows-runtime', 'StartWorkflow:codingAgentRun', 'RunActivity:runCommandPhase', 'RunWorkflow:codingAgentRun'];
  while (Date.now() < deadline && !want.every((w) => all().includes(w))) await new Promise((r) => setTimeout(r, 200));
  // Compare names only: the payload is large and says nothing a failure message needs.
  const names = [...new Set([...all().matchAll(/"(?:name|stringValue)":"([A-Za-z]+:[A-Za-z]+|ameide-[a-z-]+)"/g)].map((m) => m[1]))];
  expect(names).toEqual(expect.arrayContaining([...want, 'ameide-workflows']));
  // One trace from the API call through the workflow to its activities.
  const trace = (span: string) => new RegExp(`"traceId":"([0-9a-f]+)","spanId":"[0-9a-f]+",(?:"parentSpanId":"[0-9a-f]*",)?"name":"${span}"`).exec(all())?.[1];
  expect(trace('RunActivity:runCommandPhase')).toBe(trace('StartWorkflow:codingAgentRun'));
});
