import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  DefinitionSchema,
  PlanSchema,
  RunSchema,
  RunStatus,
  RunStatusSchema,
  StatusUpdateKind,
  StatusUpdateSchema,
  Phase,
  WorkflowService,
  type ApplyDefinitionRequest,
  type ListWorkflowRunsRequest,
} from '@ameide/contracts';
import { RUN_STATUSES } from '../src/args.js';
import { statusName } from '../src/format.js';
import { buildProgram } from '../src/main.js';
import type { Ctx } from '../src/context.js';
import { buildBinary, runBinary } from './support/binary.js';

const MIN = 60_000;

/** A WorkflowService that answers the CLI's calls from fixed data, and records what it was asked. */
function fakeService(token: string) {
  const asked: { lists: ListWorkflowRunsRequest[]; applied: ApplyDefinitionRequest[] } = { lists: [], applied: [] };
  const now = Date.now();
  const run = (id: string, status: RunStatus, startedAgo: number, tookMs: number | undefined, planId: string) =>
    create(RunSchema, {
      id,
      status,
      planId,
      planVersion: 1,
      definitionName: 'calc',
      workflowId: `coding-run-${id}`,
      methodology: { workItemIds: ['CALC-1'] },
      createTime: timestampFromMs(now - startedAgo),
      startTime: timestampFromMs(now - startedAgo),
      endTime: tookMs === undefined ? undefined : timestampFromMs(now - startedAgo + tookMs),
    });
  const runs = [
    run('3f2a9c1e-0000-4000-8000-000000000001', RunStatus.HANDED_OFF, 3 * MIN, 95_000, 'plan-1'),
    run('7b1d0e2f-0000-4000-8000-000000000002', RunStatus.COMPLETED, 2 * 60 * MIN, 42_000, 'plan-2'),
    run('9c0d8e7f-0000-4000-8000-000000000003', RunStatus.RUNNING, 30_000, undefined, 'plan-2'),
  ];
  const titles: Record<string, string> = {
    'plan-1': 'Add a multiply function',
    'plan-2': 'Make the calculator handle very long expressions with nested parentheses without losing precision',
  };
  const routes = (router: ConnectRouter) =>
    router.service(WorkflowService, {
      listWorkflowRuns(req) {
        asked.lists.push(req);
        return { runs: req.statuses.length ? runs.filter((r) => req.statuses.includes(r.status)) : runs, nextPageToken: req.pageSize === 1 ? 'tok-2' : '' };
      },
      getPlan(req) {
        return { plan: create(PlanSchema, { id: req.id, version: 1, spec: { workItems: [{ id: 'CALC-1', title: titles[req.id] ?? '' }] } }) };
      },
      listDefinitions() {
        return { definitions: [] };
      },
      async *watchWorkflowRun(req, context) {
        yield { update: create(StatusUpdateSchema, { runId: req.id, sequence: 1n, kind: StatusUpdateKind.RUN_STARTED }) };
        yield { update: create(StatusUpdateSchema, { runId: req.id, sequence: 2n, kind: StatusUpdateKind.PHASE_STARTED, phase: Phase.AGENT }) };
        // The agent runs until the client goes away.
        await new Promise((r) => context.signal.addEventListener('abort', r));
      },
      async *streamRunOutput(req) {
        if (req.phase === Phase.AGENT) yield { phase: Phase.AGENT, offset: 0n, data: 'thinking about multiply\nwriting src/calc.js\n' };
      },
      applyDefinition(req) {
        asked.applied.push(req);
        return { definition: create(DefinitionSchema, { id: 'def-1', name: req.name, version: 1, spec: req.spec }), changed: true };
      },
    });
  const handler = connectNodeAdapter({ routes });
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      // What the real service answers to a wrong token.
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'unauthenticated', message: 'invalid token' }));
      return;
    }
    handler(req, res);
  });
  return { asked, server };
}

let bin: string;
let api: string;
let fake: ReturnType<typeof fakeService>;
const ameide = (args: string[], env: Record<string, string> = {}, opts: { cwd?: string; input?: string } = {}) =>
  runBinary(bin, args, { env: { AMEIDE_API_URL: api, AMEIDE_TOKEN: 'good', ...env }, ...opts });

beforeAll(async () => {
  bin = buildBinary();
  fake = fakeService('good');
  await new Promise<void>((r) => fake.server.listen(0, '127.0.0.1', r));
  api = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
}, 120_000);
afterAll(() => fake?.server.close());

/** Every command path of the CLI ('runs list', …), from the same tree the binary is built from. */
function commandPaths(): string[] {
  const program = buildProgram(new Command('ameide'), {
    o: { out: () => {} },
    term: { color: false, interactive: false },
    cwd: '/',
    exitCode: 0,
  } as unknown as Ctx);
  const walk = (cmd: Command, prefix: string[]): string[][] => [prefix, ...cmd.commands.flatMap((c) => walk(c, [...prefix, c.name()]))];
  return walk(program, []).map((p) => p.join(' '));
}

describe('the bundled binary', { timeout: 60_000 }, () => {
  it('starts, prints its version, and has help for every command', async () => {
    expect(await ameide(['--version'])).toEqual({ status: 0, stdout: '0.1.0\n', stderr: '' });
    const paths = commandPaths();
    expect(paths).toEqual(expect.arrayContaining(['runs list', 'runs start', 'runs logs', 'login', 'context use', 'completion', 'notifications stats']));
    const helps: string[] = [];
    for (let i = 0; i < paths.length; i += 8) {
      const batch = await Promise.all(paths.slice(i, i + 8).map((p) => ameide([...p.split(' ').filter(Boolean), '--help'])));
      batch.forEach((r, j) => {
        const path = paths[i + j]!;
        expect(r, path).toMatchObject({ status: 0, stderr: '' });
        expect(r.stdout, path).toMatch(/^Usage: ameide/);
        expect(r.stdout, path).toContain('Examples:\n  $ ');
        helps.push(`==> ameide ${path ? `${path} ` : ''}--help\n${r.stdout}`);
      });
    }
    await expect(helps.join('\n')).toMatchFileSnapshot('__snapshots__/help.txt');
    // `ameide help <cmd>` is the same help.
    expect((await ameide(['help', 'runs', 'list'])).stdout).toBe((await ameide(['runs', 'list', '--help'])).stdout);
  });

  it('refuses unknown flags, missing values and repeated single-value flags with exit 2, naming the flag', async () => {
    expect(await ameide(['runs', 'list', '--bogus'])).toMatchObject({
      status: 2,
      stdout: '',
      stderr: expect.stringMatching(/^error: unknown option '--bogus'/),
    });
    expect(await ameide(['runs', 'start', '--definition', 'a', '--definition', 'b'])).toMatchObject({
      status: 2,
      stderr: 'error: --definition given twice: it takes one value\n',
    });
    expect(await ameide(['runs', 'start', '--definition'])).toMatchObject({ status: 2, stderr: 'error: --definition needs a value\n' });
    expect(await ameide(['runs', 'start'])).toMatchObject({ status: 2, stderr: 'error: runs start needs --definition <name>\n' });
    expect(await ameide(['runs', 'list', '-o', 'xml'])).toMatchObject({ status: 2, stderr: 'error: --output xml: use json, yaml, wide\n' });
    expect(await ameide(['runs', 'list', '--json', '-o', 'yaml'])).toMatchObject({ status: 2, stderr: 'error: --json and -o yaml: use one of them\n' });
    expect(await ameide(['runs', 'list', '--status', 'sleeping'])).toMatchObject({
      status: 2,
      stderr: expect.stringContaining('--status sleeping: use queued, running'),
    });
    expect(await ameide(['runs', 'list', '--limit', '0'])).toMatchObject({ status: 2, stderr: expect.stringContaining('--limit 0: must be') });
    expect(await ameide(['workitems', 'remove'])).toMatchObject({ status: 2, stderr: 'error: unknown command "workitems remove"; use apply, list or get\n' });
    // A group without its subcommand: its help, on stderr.
    expect(await ameide(['runs'])).toMatchObject({ status: 2, stdout: '', stderr: expect.stringContaining('Usage: ameide runs') });
  });

  it('lists runs as a table with relative times that fits the terminal, and as JSON or YAML with lower-case enums', async () => {
    const text = await ameide(['runs', 'list'], { COLUMNS: '100' });
    expect(text.status).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +STATUS +DEFINITION +WORK ITEM +TITLE +STARTED +DURATION$/);
    expect(lines[1]).toMatch(/^3f2a9c1e +handed_off +calc +CALC-1 +Add a multiply function +3m ago +1m 35s$/);
    expect(lines[2]).toMatch(/^7b1d0e2f +completed +calc +CALC-1 +Make the calculator.*… +2h ago +42s$/);
    expect(lines[3]).toMatch(/^9c0d8e7f +running +calc +CALC-1 +Make the calculator.*… +\d+s ago +\d+s$/);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(100);
    expect(text.stdout).not.toContain('\x1b[');
    // No terminal and no COLUMNS: nothing is cut.
    expect((await ameide(['runs', 'list'])).stdout).toContain('without losing precision');

    const json = JSON.parse((await ameide(['runs', 'list', '-o', 'json'])).stdout) as Array<{ id: string; status: string }>;
    expect(json.map((r) => r.status)).toEqual(['handed_off', 'completed', 'running']);
    expect(JSON.parse((await ameide(['runs', 'list', '--json'])).stdout)).toEqual(json);
    const yaml = parseYaml((await ameide(['runs', 'list', '-o', 'yaml'])).stdout) as Array<{ id: string; status: string; startTime: string }>;
    expect(yaml).toEqual(json);
    expect((await ameide(['runs', 'list', '-o', 'wide'])).stdout).toMatch(/^ID +STATUS +PHASE +DEFINITION +PLAN +WORK ITEM +BRANCH +TITLE/);
  });

  it('takes every run status the API has', () => {
    expect(RUN_STATUSES).toEqual(RunStatusSchema.values.filter((v) => v.number !== 0).map((v) => statusName(v.number)));
  });

  it('filters by every status, --failed selecting failed and handed_off, and hints that handed-off runs failed too', async () => {
    fake.asked.lists.length = 0;
    const handedOff = await ameide(['runs', 'list', '--status', 'handed_off', '-o', 'json']);
    expect(JSON.parse(handedOff.stdout)).toHaveLength(1);
    expect(handedOff.stderr).toBe('');
    await ameide(['runs', 'list', '--failed']);
    const failedOnly = await ameide(['runs', 'list', '--status', 'failed']);
    expect(failedOnly.stderr).toContain('hint: handed-off runs failed too');
    await ameide(['runs', 'list', '--status', 'queued,running', '--status', 'handed-off', '--limit', '1']);
    expect(fake.asked.lists.map((r) => [...r.statuses].sort())).toEqual([
      [RunStatus.HANDED_OFF],
      [RunStatus.FAILED, RunStatus.HANDED_OFF],
      [RunStatus.FAILED],
      [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.HANDED_OFF].sort(),
    ]);
    expect(fake.asked.lists.at(-1)!.pageSize).toBe(1);
    expect((await ameide(['runs', 'list', '--limit', '1'])).stderr).toBe('more runs: the next page is --page-token tok-2\n');
  });

  it('colours only on a terminal, and never with NO_COLOR', async () => {
    // `script` gives the binary a terminal (asynchronously: the fake API answers from this process).
    const onTty = async (env: string) =>
      (await runBinary('script', ['-qec', `env ${env} AMEIDE_API_URL=${api} AMEIDE_TOKEN=good ${bin} runs list`, '/dev/null'], { stdin: 'ignore' })).stdout;
    expect(await onTty('TERM=xterm')).toContain('\x1b[32mcompleted\x1b[0m');
    expect(await onTty('TERM=xterm NO_COLOR=1')).not.toContain('\x1b[');
  });

  it('stops watching on Ctrl-C, saying the run continues and how to follow it; on a terminal it shows the running command', async () => {
    const child = spawn(bin, ['runs', 'watch', '3f2a9c1e'], { env: { PATH: process.env.PATH!, AMEIDE_API_URL: api, AMEIDE_TOKEN: 'good' } });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((r) =>
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('agent started')) r();
      }),
    );
    child.kill('SIGINT');
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(130);
    expect(stdout).toBe('[  1] run started\n[  2] agent started\n');
    expect(stderr).toBe(
      '\nstopped watching; run 3f2a9c1e continues: follow it with `ameide runs watch 3f2a9c1e` (stop it with `ameide runs cancel 3f2a9c1e`)\n',
    );

    // On a terminal: the agent's latest lines and how long it has been running, below the updates.
    const tty = await runBinary('script', ['-qec', `env AMEIDE_API_URL=${api} AMEIDE_TOKEN=good timeout -s INT 3 ${bin} runs watch 3f2a9c1e`, '/dev/null'], {
      stdin: 'ignore',
    });
    expect(tty.stdout).toMatch(/agent running for \ds…/);
    expect(tty.stdout).toContain('│ writing src/calc.js');
  });

  it('resolves -f against the directory it is run in', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ameide-cwd-'));
    writeFileSync(join(dir, 'def.yaml'), 'name: calc\nspec:\n  repoUrl: https://example.com/calc.git\n  agentCommand: codex exec\n');
    const r = await ameide(['definitions', 'apply', '-f', 'def.yaml'], {}, { cwd: dir });
    expect(r).toMatchObject({ status: 0, stdout: 'definition calc applied (version 1, id def-1)\n' });
    expect(fake.asked.applied.at(-1)!.spec!.repoUrl).toBe('https://example.com/calc.git');
  });

  it('logs in, lists, switches and shows contexts in $XDG_CONFIG_HOME/ameide/config.yaml', async () => {
    const xdg = mkdtempSync(join(tmpdir(), 'ameide-xdg-'));
    const env = { XDG_CONFIG_HOME: xdg, AMEIDE_API_URL: '', AMEIDE_TOKEN: '' };
    expect((await ameide(['context', 'list'], env)).stdout).toMatch(/^no contexts/);
    // The token is checked before it is saved.
    expect(await ameide(['login', '--api-url', api, '--with-token'], env, { input: 'wrong\n' })).toMatchObject({
      status: 1,
      stderr: expect.stringContaining('did not accept the token'),
    });
    expect(await ameide(['login', '--api-url', api, '--with-token'], env, { input: 'good\n' })).toMatchObject({ status: 0 });
    expect(await ameide(['login', '--context', 'prod', '--api-url', 'https://ameide.example.com', '--token', 'p', '--no-verify'], env)).toMatchObject({
      status: 0,
    });
    const file = join(xdg, 'ameide', 'config.yaml');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toContain('current-context: prod');
    expect((await ameide(['context', 'list'], env)).stdout).toMatch(
      /^CURRENT +NAME +API URL\n +default +http:\/\/127\.0\.0\.1:\d+\n\* +prod +https:\/\/ameide\.example\.com\n$/,
    );
    expect((await ameide(['context', 'current'], env)).stdout).toBe('prod (https://ameide.example.com)\n');
    expect(await ameide(['context', 'use', 'staging'], env)).toMatchObject({
      status: 1,
      stderr: expect.stringContaining('no context "staging": use default, prod'),
    });
    expect(await ameide(['context', 'use', 'default'], env)).toMatchObject({ status: 0 });
    // The saved context is used without AMEIDE_API_URL / AMEIDE_TOKEN; --context picks another for one command.
    expect(JSON.parse((await ameide(['runs', 'list', '--json'], env)).stdout)).toHaveLength(3);
    expect(await ameide(['--context', 'nope', 'runs', 'list'], env)).toMatchObject({ status: 1, stderr: expect.stringContaining('no context "nope"') });
  });

  it('loads its bash completion', async () => {
    const script = (await ameide(['completion', 'bash'])).stdout;
    const file = join(mkdtempSync(join(tmpdir(), 'ameide-completion-')), 'ameide.bash');
    writeFileSync(file, script);
    expect(execFileSync('bash', ['-c', `source ${file}; complete -p ameide`], { encoding: 'utf8' })).toBe('complete -o default -F _ameide ameide\n');
    const complete = (line: string) =>
      execFileSync('bash', ['-c', `source ${file}; COMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _ameide; echo "\${COMPREPLY[*]}"`], {
        encoding: 'utf8',
      }).trim();
    expect(complete('ameide ru')).toBe('runs');
    expect(complete('ameide runs li')).toBe('list');
    expect(complete('ameide runs list --fa')).toBe('--failed');
    expect(complete('ameide runs list --definition calc --fail')).toBe('--failed');
    expect(complete("ameide context ''")).toBe('list use current delete');
    expect(complete("ameide runs list -o ''")).toBe('json yaml wide');
    expect((await ameide(['completion', 'zsh'])).stdout).toContain('bashcompinit');
    expect((await ameide(['completion', 'fish'])).stdout).toContain("complete -c ameide -n '__ameide_at \\'runs\\'' -f -a 'list' -d 'list runs, newest first'");
  });

  it('says in one line when no API answers, or the token is refused', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await ameide(['runs', 'list'], { AMEIDE_API_URL: `http://127.0.0.1:${port}` })).toEqual({
      status: 1,
      stdout: '',
      stderr: `error: no API at http://127.0.0.1:${port}: start one with \`make up\` or set AMEIDE_API_URL\n`,
    });
    expect(await ameide(['runs', 'list'], { AMEIDE_TOKEN: 'wrong' })).toEqual({
      status: 1,
      stdout: '',
      stderr: `error: ${api} did not accept the token from AMEIDE_TOKEN (invalid token): fix AMEIDE_TOKEN\n`,
    });
  });
});
