import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Phase, RunStatus } from '@ameide/contracts';
import { ACME_SECRET, useHarnessWithOrigin, type Harness } from '../support/harness.js';
import { applyAndRun, artifactDir, decodedViews, item, refsOf, secretLeaks, sections } from './support.js';

const AGENT_SECRET = [{ name: 'DEPLOY_TOKEN', phases: [Phase.AGENT], fromEnv: 'DEPLOY_TOKEN' }];
const INSTALL_SECRET = [{ name: 'DEPLOY_TOKEN', phases: [Phase.INSTALL], fromEnv: 'DEPLOY_TOKEN' }];

/**
 * Secrets never leave the worker: an agent that puts a secret into the change (a file name, a commit
 * message, a file's content) is stopped by push protection before anything is pushed, and the secret
 * shows up nowhere a person or another system can read (API, artifacts, handoff bundle, Temporal).
 * Output re-encoded by ordinary tools is redacted too.
 */
describe('secrets never leave through the change or re-encoded output', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((started) => ({ h, origin } = started));

  it.each([
    ['a file named after the secret', 'touch "src/$DEPLOY_TOKEN.txt"', 'CALC-61'],
    [
      'the secret in a commit message',
      'git add -A && git -c user.name=Agent -c user.email=agent@example.com commit --quiet -m "deploy with $DEPLOY_TOKEN"',
      'CALC-62',
    ],
    ['the secret written into a file', `echo "export const token = '$DEPLOY_TOKEN';" > src/config.js`, 'CALC-63'],
  ])('push protection stops a change with %s: nothing is pushed and the secret is nowhere', async (_what, leak, id) => {
    const before = refsOf(origin);
    const f = await applyAndRun(
      h.acme,
      origin,
      `push-protection-${id.toLowerCase()}`,
      { agentCommand: `node "$AGENT_SCRIPT" && ${leak}`, secrets: AGENT_SECRET },
      item(id),
    );
    // Soft: every broken promise is reported, not only the first.
    expect.soft(refsOf(origin), 'the origin changed: something was pushed').toBe(before);
    expect.soft(f.run.status).not.toBe(RunStatus.COMPLETED);
    expect.soft(f.run.summary?.pushed ?? false).toBe(false);
    expect.soft(f.run.error).toMatch(/push protection/i);
    expect(await secretLeaks(h, 'acme', h.acme, f, ACME_SECRET, origin)).toEqual([]);
  });

  it('a handed-off run whose change holds the secret: nothing is pushed and its handoff bundle does not carry the secret', async () => {
    const before = refsOf(origin);
    const f = await applyAndRun(
      h.acme,
      origin,
      'secret-handoff',
      {
        agentCommand: `node "$AGENT_SCRIPT" && echo "export const token = '$DEPLOY_TOKEN';" > src/config.js`,
        testCommand: 'exit 1',
        secrets: AGENT_SECRET,
      },
      item('CALC-65'),
    );
    expect.soft(refsOf(origin), 'the origin changed: something was pushed').toBe(before);
    expect.soft(f.run.status).toBe(RunStatus.HANDED_OFF);
    expect(f.run.summary?.handoffUri, 'a handoff bundle').toMatch(/^file:/);
    expect(await secretLeaks(h, 'acme', h.acme, f, ACME_SECRET, origin)).toEqual([]);
  });

  it('never sends a secret a command prints in the output it streams while running (RecordRunOutput): whole, in halves a second apart, or encoded', async () => {
    const agent = [
      'echo "plain $DEPLOY_TOKEN"',
      // The first half waits more than a second (the worker sends at most once a second) for the second.
      'printf %s "$DEPLOY_TOKEN" | head -c 8',
      'sleep 1.5',
      'printf "%s\\n" "$DEPLOY_TOKEN" | tail -c +9',
      'printf %s "$DEPLOY_TOKEN" | base64',
      'printf %s "$DEPLOY_TOKEN" | xxd',
      'sleep 1.5',
      'node "$AGENT_SCRIPT"',
    ].join('; ');
    const f = await applyAndRun(h.acme, origin, 'streamed-output', { agentCommand: agent, secrets: AGENT_SECRET }, item('CALC-66'));
    const chunks: string[] = [];
    for await (const res of h.acme.streamRunOutput({ runId: f.run.id, phase: Phase.AGENT })) if (!res.phaseFinished) chunks.push(res.data);
    expect(chunks.length, 'the agent phase streamed its output').toBeGreaterThan(0);
    const all = chunks.join('');
    expect(all).toContain('plain [REDACTED]');
    const leaks: string[] = [];
    for (const [where, text] of [...chunks.map((c, i) => [`chunk #${i}`, c] as const), ['all chunks', all] as const]) {
      for (const v of decodedViews(Buffer.from(text, 'utf8'))) if (v.text.includes(ACME_SECRET)) leaks.push(`${where}: readable ${v.how}`);
      if (text.includes(ACME_SECRET.slice(0, 8))) leaks.push(`${where}: the secret's first half`);
    }
    expect(leaks).toEqual([]);
    expect(await secretLeaks(h, 'acme', h.acme, f, ACME_SECRET, origin)).toEqual([]);
  });

  it('redacts a secret printed through base64 (wrapped), xxd, base32 and UTF-16', async () => {
    const cmd = [
      'echo "==b64=="',
      `(head -c 100 /dev/zero | tr '\\0' x; printf %s "$DEPLOY_TOKEN"; head -c 100 /dev/zero | tr '\\0' y) | base64`,
      'echo "==end=="',
      'echo "==xxd=="',
      'printf %s "$DEPLOY_TOKEN" | xxd',
      'echo "==end=="',
      'echo "==b32=="',
      'printf %s "$DEPLOY_TOKEN" | base32',
      'echo "==end=="',
      'echo "==u16=="',
      'printf %s "$DEPLOY_TOKEN" | iconv -f UTF-8 -t UTF-16LE',
      'echo',
      'echo "==end=="',
      // Keeps the binary output out of the 4000-byte output tail: this test is about redaction only.
      'seq 1 1200',
      'npm ci --no-audit --no-fund',
    ].join('; ');
    const f = await applyAndRun(h.acme, origin, 'encodings', { installCommand: cmd, secrets: INSTALL_SECRET }, item('CALC-64'));
    const raw = readFileSync(join(artifactDir(h, 'acme', f.run.id), 'transcripts', 'install.log'));
    const out = raw.subarray(raw.indexOf(0x0a) + 1);
    const names = ['b64', 'xxd', 'b32', 'u16'];
    const parts = sections(out, names);
    expect(Object.keys(parts).sort(), 'the install command printed every section').toEqual([...names].sort());
    const leaks: string[] = [];
    for (const [name, part] of [...Object.entries(parts), ['whole output', out] as const]) {
      for (const v of decodedViews(part)) if (v.text.includes(ACME_SECRET)) leaks.push(`${name}: readable ${v.how}`);
    }
    const tail = f.run.phases.find((p) => p.phase === Phase.INSTALL)?.outputTail ?? '';
    for (const v of decodedViews(Buffer.from(tail, 'utf8'))) if (v.text.includes(ACME_SECRET)) leaks.push(`output tail: readable ${v.how}`);
    expect(leaks).toEqual([]);
  });
});
