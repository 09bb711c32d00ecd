import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { stackDir, type StackConfig } from '@ameide/config';
import { cli, formatRun, watchRun } from '@ameide/cli';
import { RunStatus, type Run } from '@ameide/contracts';
import { createWorkflowServiceClient } from '@ameide/sdk';
import { createOrigin } from './git-fixtures.js';
import { startStack, stopOnSignals } from './stack.js';

export const SAMPLE_REPO = resolve('examples/sample-repo');
export const SCRIPTED_AGENT = resolve('examples/agents/scripted-agent.mjs');

/** The sample repository's preview: a page trying every function of the calculator (examples/sample-repo/scripts/preview.mjs). */
export const SAMPLE_PREVIEW = { command: 'node scripts/preview.mjs', healthPath: '/health', ttlSeconds: 3600 };

/** GET of a preview URL through the preview router on 127.0.0.1 (the URL's host picks the preview, as a browser's would). */
export function fetchPreview(url: string, routerPort: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: '127.0.0.1', port: routerPort, path: u.pathname, headers: { host: u.host }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject).on('timeout', () => req.destroy(new Error('the preview did not answer within 10 s')));
    req.end();
  });
}

/** The definition of the sample repository, with absolute paths for this checkout. */
export function sampleDefinition(originDir: string, name = 'sample-calculator') {
  return {
    name,
    annotations: { team: 'demo' },
    spec: {
      repoUrl: originDir,
      defaultBranch: 'main',
      installCommand: 'npm ci --no-audit --no-fund',
      agentCommand: 'node "$AGENT_SCRIPT"',
      testCommand: 'npm test',
      // npm test writes a JUnit report there (and prints TAP): the run counts its tests.
      testReports: ['reports/*.xml'],
      branchPrefix: 'ameide/',
      phaseTimeoutSeconds: 300,
      env: { AGENT_SCRIPT: SCRIPTED_AGENT },
      // The scripted agent lives outside the repository: the sandbox mounts its folder read-only.
      guardrails: { readOnlyPaths: [dirname(SCRIPTED_AGENT)] },
    },
  };
}

/** The run once its follow-up stored the Definition of Done (at most a minute after the run ended). */
async function afterFollowup(api: ReturnType<typeof createWorkflowServiceClient>, id: string): Promise<Run> {
  const until = Date.now() + 60_000;
  for (;;) {
    const run = (await api.getWorkflowRun({ id })).run!;
    if (run.done || Date.now() > until) return run;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * `make demo`: starts the stack on embedded defaults, applies the sample definition through the CLI,
 * drives one real coding-agent run on the sample repository, prints its summary and stops everything.
 * Returns 0 only if the run COMPLETED.
 */
export async function runDemo(cfg: StackConfig): Promise<number> {
  const log = (s: string) => console.log(s);
  log('starting the stack (embedded Postgres, Temporal dev server, workflow service, worker)…');
  const stack = await startStack(cfg, { name: 'demo', ephemeral: true });
  // Ctrl-C stops everything the demo started, as the normal end does.
  stopOnSignals(stack.stop, 130);
  // The run cannot finish if the stack gives up (Postgres or Temporal died): say so instead of waiting.
  const gaveUp = new Promise<never>((_, reject) => {
    void stack.ended.then((reason) => reason && reject(Object.assign(new Error(`the stack stopped: ${reason}`), { expected: true })));
  });
  gaveUp.catch(() => undefined);
  try {
    log(`  API            ${stack.apiUrl}`);
    log(`  Temporal       ${stack.temporalAddress}${stack.temporalUiUrl ? `   Web UI ${stack.temporalUiUrl}` : ''}`);
    log(`  logs           ${stack.logs}`);
    const dir = stackDir(cfg, 'demo');
    const origin = createOrigin(SAMPLE_REPO, join(dir, 'origin.git'));
    const defFile = join(dir, 'definition.yaml');
    const def = sampleDefinition(origin);
    writeFileSync(defFile, stringify({ ...def, spec: { ...def.spec, preview: SAMPLE_PREVIEW } }));
    const env = { AMEIDE_API_URL: stack.apiUrl, AMEIDE_TOKEN: stack.devToken };
    // eslint-disable-next-line no-restricted-properties -- the documented exception: the demo writes the CLI's settings for the in-process CLI calls below.
    Object.assign(process.env, env);
    log(`\n$ ameide definitions apply -f ${defFile}`);
    await cli(['definitions', 'apply', '-f', defFile]);
    const api = createWorkflowServiceClient({ baseUrl: stack.apiUrl, token: stack.devToken });
    const started = await api.startWorkflowRun({
      definition: 'sample-calculator',
      workItems: [
        {
          id: 'CALC-1',
          title: 'Add a multiply function',
          description: 'The calculator can add and subtract; users also need to multiply.',
          acceptanceCriteria: ['multiply(6, 7) returns 42', 'the function has a unit test', 'npm test passes'],
          contextLinks: ['https://example.com/adr/0001-calculator-scope'],
        },
      ],
      methodology: { profile: 'scrum', timeboxIds: ['sprint-1'], goalIds: ['goal-math'], workItemIds: [], elementIds: [] },
    });
    const runId = started.run!.id;
    log(`\nrun ${runId} started; following it live:`);
    await Promise.race([watchRun(api, runId, 0n, false, { out: log }), gaveUp]);
    // What follows the run (evidence, attestations, the Definition of Done) takes a moment more.
    const run = await Promise.race([afterFollowup(api, runId), gaveUp]);
    log('\n' + formatRun(run));
    const url = run.summary?.previewAliasUrl || run.summary?.previewUrl;
    if (url && stack.previewPort) {
      log(`\n$ curl ${url}`);
      const page = await fetchPreview(url, stack.previewPort);
      log(`${page.status === 200 ? '' : `HTTP ${page.status}: `}${page.body.trim()}`);
    }
    log('\n$ ameide prs list');
    await cli(['prs', 'list']);
    log(`\n$ ameide evidence verify ${runId}`);
    const verified = await cli(['evidence', 'verify', runId]);
    return run.status === RunStatus.COMPLETED && verified === 0 ? 0 : 1;
  } finally {
    log('\nstopping the stack…');
    await stack.stop();
  }
}
