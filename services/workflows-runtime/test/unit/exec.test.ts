import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OutputTail, runCommand, TIMEOUT_EXIT_CODE } from '../../src/activities/exec.js';
import { renderPrompt } from '../../src/activities/workspace.js';
import { DEFAULT_GUARDRAILS } from '@ameide/temporal';

const dir = mkdtempSync(join(tmpdir(), 'exec-'));
const env = { PATH: '/usr/local/bin:/usr/bin:/bin' };

describe('command execution', () => {
  it('records exit code, output tail and the full transcript', async () => {
    const transcriptPath = join(dir, 'ok.log');
    const r = await runCommand({ command: 'echo out; echo err >&2; exit 7', cwd: dir, env, timeoutMs: 10_000, transcriptPath });
    expect(r.exitCode).toBe(7);
    expect(r.outputTail).toContain('out');
    expect(r.outputTail).toContain('err');
    const transcript = readFileSync(transcriptPath, 'utf8');
    expect(transcript).toMatch(/^\$ echo out/);
    expect(transcript).toContain('[exit 7]');
  });

  it('passes only the environment it is given', async () => {
    const r = await runCommand({
      command: 'echo "home=${HOME:-unset} x=$X"',
      cwd: dir,
      env: { ...env, X: '1' },
      timeoutMs: 10_000,
      transcriptPath: join(dir, 'env.log'),
    });
    expect(r.outputTail.trim()).toBe('home=unset x=1');
  });

  it('kills the whole process group when the phase budget runs out', async () => {
    const pidFile = join(dir, 'pid');
    const r = await runCommand({
      command: `(trap '' TERM; sleep 60) & echo $! > ${pidFile}; sleep 60`,
      cwd: dir,
      env,
      timeoutMs: 300,
      killGraceMs: 200,
      transcriptPath: join(dir, 'timeout.log'),
    });
    expect(r.exitCode).toBe(TIMEOUT_EXIT_CODE);
    expect(r.timedOut).toBe(true);
    expect(r.outputTail).toContain('killed after the 0s phase budget');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const state = (() => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2];
      } catch {
        return 'gone';
      }
    })();
    expect(['gone', 'Z']).toContain(state);
  });

  it('keeps only the last bytes of large output', async () => {
    const r = await runCommand({ command: 'seq 1 100000', cwd: dir, env, timeoutMs: 10_000, tailBytes: 100, transcriptPath: join(dir, 'big.log') });
    expect(r.outputTail.startsWith('…')).toBe(true);
    expect(r.outputTail.endsWith('100000\n')).toBe(true);
    expect(r.outputBytes).toBeGreaterThan(500_000);
  });

  it('OutputTail keeps the newest bytes across chunks', () => {
    const t = new OutputTail(5);
    for (const c of ['abc', 'def', 'gh']) t.push(Buffer.from(c));
    expect(t.toString()).toBe('…defgh');
    expect(t.total).toBe(8);
  });

  it('OutputTail keeps the last lines of its bytes when told how many', () => {
    const t = new OutputTail(4000, 3);
    t.push(Buffer.from('one\ntwo\n'));
    t.push(Buffer.from('three\nfour\n'));
    expect(t.toString()).toBe('…two\nthree\nfour\n');
    const open = new OutputTail(4000, 2);
    open.push(Buffer.from('a\nb\nc'));
    expect(open.toString()).toBe('…b\nc');
    const few = new OutputTail(4000, 40);
    few.push(Buffer.from('a\nb\n'));
    expect(few.toString()).toBe('a\nb\n');
  });

  it('hands every byte it writes to the transcript to onOutput, at its offset, also when a retry appends', async () => {
    const transcriptPath = join(dir, 'live.log');
    const seen = new Map<number, Buffer>();
    const onOutput = (chunk: Buffer, offset: number) => seen.set(offset, Buffer.from(chunk));
    const command = 'printf "a\\000b\\n"; seq 1 3000; printf "\\377 end"';
    await runCommand({ command, cwd: dir, env, timeoutMs: 10_000, transcriptPath, onOutput });
    // A second attempt appends: its offsets continue after the first's bytes. Its output is cut by the budget.
    await runCommand({ command: 'seq 1 5000', cwd: dir, env, timeoutMs: 10_000, transcriptPath, onOutput, maxOutputBytes: 1000 });
    const file = readFileSync(transcriptPath);
    let at = 0;
    for (const [offset, chunk] of [...seen].sort((a, b) => a[0] - b[0])) {
      expect(offset).toBe(at);
      expect(file.subarray(offset, offset + chunk.length).equals(chunk)).toBe(true);
      at += chunk.length;
    }
    expect(at).toBe(file.length);
    expect(file.toString('latin1')).toContain('output truncated');
  });
});

it('renders the agent prompt from the work item', () => {
  const prompt = renderPrompt(
    {
      runId: 'r1',
      tenantId: 't',
      planId: 'p',
      planVersion: 1,
      definitionId: 'd',
      definitionName: 'sample',
      repo: {
        repoUrl: '',
        defaultBranch: 'main',
        installCommand: '',
        agentCommand: '',
        testCommand: '',
        branchPrefix: '',
        phaseTimeoutSeconds: 1,
        env: {},
        guardrails: DEFAULT_GUARDRAILS,
        secrets: [],
      },
      workItems: [
        { id: 'CALC-1', title: 'Add multiply', description: 'Users need it.', acceptanceCriteria: ['multiply(6,7)=42'], contextLinks: ['https://x/adr'] },
      ],
      methodology: { profile: 'scrum', timeboxIds: ['s1'], goalIds: ['g1'], workItemIds: ['CALC-1'], elementIds: [] },
      trigger: 'manual',
    },
    'ameide/run-r1',
  );
  expect(prompt).toContain('# Add multiply');
  expect(prompt).toContain('Users need it.');
  expect(prompt).toContain('## Acceptance criteria\n\n- multiply(6,7)=42');
  expect(prompt).toContain('- https://x/adr');
  expect(prompt).toContain('- Branch: ameide/run-r1');
  expect(prompt).toContain('- Goals: g1');
});
