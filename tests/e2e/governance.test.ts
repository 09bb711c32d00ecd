import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { subjectsMatch, verifyEnvelope, SLSA_PROVENANCE_TYPE, TEST_RESULT_TYPE } from '@ameide/attest';
import { RunStatus, type Run } from '@ameide/contracts';
import { openDatabase } from '@ameide/db';
import { createGovernanceServiceClient, type GovernanceServiceClient } from '@ameide/sdk';
import { followupTaskQueue } from '@ameide/temporal';
import { verifyWebhookSignature } from '../../services/workflows/src/notifications/webhook.js';
import { applySample, MULTIPLY, runCli, useHarnessWithOrigin, watchAll, type Harness } from '../support/harness.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Verifies a stored envelope with Python's securesystemslib (packages/attest/test/verify_dsse.py): not our code. */
function independentlyVerified(envelope: object, key: { keyid: string; publicKeyPem: string }, predicateType: string, subjects: Record<string, string>) {
  const input = JSON.stringify({ envelope, publicKeyPem: key.publicKeyPem, keyid: key.keyid, predicateType, subjects });
  const r = spawnSync(join(ROOT, '.tools/venv/bin/python'), [join(ROOT, 'packages/attest/test/verify_dsse.py')], { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: r.stdout.trim() };
}

/** A webhook receiver: every delivery's headers and raw body. */
async function receiver(): Promise<{ server: Server; url: string; got: { headers: Record<string, string | string[] | undefined>; body: string }[] }> {
  const got: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/ameide`, got };
}

/** The run once its follow-up has evaluated its Definition of Done (evidence and attestations are stored before). */
async function afterFollowup(h: Harness, id: string, timeoutMs = 60_000): Promise<Run> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const run = (await h.acme.getWorkflowRun({ id })).run!;
    if (run.done) return run;
    if (Date.now() > until) throw new Error(`run ${id} has no Definition of Done after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('after a run: evidence, signed attestations and the Definition of Done, once', () => {
  let h: Harness;
  let origin: string;
  let gov: GovernanceServiceClient;
  useHarnessWithOrigin((s) => {
    ({ h, origin } = s);
    gov = createGovernanceServiceClient({ baseUrl: h.apiUrl, token: h.tokens.acme });
  });

  const scrum = { profile: 'scrum', timeboxIds: ['SPRINT-7'], goalIds: ['GOAL-3'] };
  const start = async (definition: string, item: string) => {
    const { run } = await h.acme.startWorkflowRun({ definition, workItems: [{ ...MULTIPLY, id: item }], methodology: scrum });
    await watchAll(h.acme, run!.id);
    return afterFollowup(h, run!.id);
  };

  it('definition → run → evidence signed and attached to the sprint Increment → DoD met → the subscriber is notified', async () => {
    // Pat follows CALC-11: in the notification center and on a signed webhook.
    const hook = await receiver();
    const secret = 'whsec_governance_e2e_0123456789';
    await gov.putSubscription({ person: 'pat', channel: 'webhook', address: hook.url, secret, workItemId: 'CALC-11' });
    await gov.putSubscription({ person: 'pat', channel: 'in_app', workItemId: 'CALC-11' });
    await applySample(h.acme, origin);
    const run = await start('sample', 'CALC-11');
    expect(run.status).toBe(RunStatus.COMPLETED);

    // The DoD checklist, with the test counts.
    expect(run.done!.met).toBe(true);
    expect(run.done!.profile).toBe('scrum');
    expect(run.done!.rules.map((r) => [r.rule, r.passed])).toEqual([
      ['run_completed', true],
      ['tests_passed', true],
      ['no_policy_violation', true],
      ['budget_not_exceeded', true],
      ['evidence_attached', true],
    ]);
    expect(run.done!.rules[1]!.detail).toBe('3 passed, 0 failed, 0 skipped');
    expect(run.done!.rules[4]!.detail).toMatch(/attached to increment SPRINT-7$/);

    // Evidence: every file in the store hashes to its descriptor; provenance names the run and its commits.
    const { evidence, attestations } = await gov.listEvidence({ runId: run.id });
    expect(new Set(evidence.map((e) => e.kind))).toEqual(new Set(['report', 'transcript', 'diff', 'test_report', 'pull_request']));
    for (const e of evidence) {
      const bytes = readFileSync(fileURLToPath(e.uri));
      expect(BigInt(bytes.length)).toBe(e.sizeBytes);
      expect(e.provenance).toMatchObject({ runId: run.id, planId: run.planId, baseCommit: run.summary!.baseCommit, headCommit: run.summary!.headCommit });
    }
    expect(evidence[0]!.provenance!.toolVersions.git).toMatch(/^\d+\.\d+/);

    // Attestations: DSSE envelopes over in-toto statements whose subjects are the evidence digests.
    expect(attestations.map((a) => a.predicateType).sort()).toEqual([SLSA_PROVENANCE_TYPE, TEST_RESULT_TYPE].sort());
    const keys = (await gov.getSigningKeys({})).keys.map((k) => ({ keyid: k.keyId, publicKeyPem: k.publicKeyPem }));
    for (const a of attestations) {
      expect(a.development).toBe(true);
      expect(a.artifacts).toEqual([expect.objectContaining({ kind: 'increment', id: 'SPRINT-7' })]);
      const st = verifyEnvelope({ payloadType: a.envelope!.payloadType, payload: a.envelope!.payload, signatures: a.envelope!.signatures }, keys);
      expect(
        subjectsMatch(
          st,
          evidence.filter((e) => a.subjects.some((s) => s.name === e.name)),
        ),
      ).toEqual([]);
    }
    // The standard says so too: Python's securesystemslib accepts the stored envelopes.
    for (const a of attestations) {
      const subjects = Object.fromEntries(a.subjects.map((x) => [x.name, x.sha256]));
      expect(independentlyVerified(a.envelope!, keys[0]!, a.predicateType, subjects)).toEqual({ status: 0, out: 'verified' });
    }
    const provenance = attestations.find((a) => a.predicateType === SLSA_PROVENANCE_TYPE)!;
    const st = JSON.parse(Buffer.from(provenance.envelope!.payload, 'base64').toString()) as { predicate: Record<string, any> };
    expect(st.predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit).toBe(run.summary!.baseCommit);
    expect(st.predicate.runDetails.metadata.invocationId).toBe(run.id);

    // The graph: the same evidence for the work item, the sprint, its goal and its Increment.
    for (const sel of [{ workItemId: 'CALC-11' }, { timeboxId: 'SPRINT-7' }, { goalId: 'GOAL-3' }, { artifact: { kind: 'increment', id: 'SPRINT-7' } }]) {
      const res = await gov.listEvidence(sel);
      expect(res.evidence.map((e) => e.id).sort()).toEqual(evidence.map((e) => e.id).sort());
      expect(res.attestations).toHaveLength(2);
    }

    // The notification: in Pat's notification center, and one signed webhook with the DoD and the evidence.
    const until = Date.now() + 30_000;
    while (hook.got.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    hook.server.close();
    expect(hook.got).toHaveLength(1);
    const delivery = hook.got[0]!;
    expect(delivery.headers['x-ameide-event']).toBe('run_completed');
    expect(verifyWebhookSignature(delivery.body, String(delivery.headers['x-ameide-signature-256']), secret)).toBe(true);
    const payload = JSON.parse(delivery.body) as { run: { id: string }; dod: { met: boolean }; evidence: { sha256: string }[] };
    expect(payload.run.id).toBe(run.id);
    expect(payload.dod.met).toBe(true);
    expect(payload.evidence.map((e) => e.sha256).sort()).toEqual(evidence.map((e) => e.sha256).sort());
    const inbox = await gov.listNotifications({ person: 'pat' });
    expect(inbox.notifications.map((n) => [n.event, n.runId])).toEqual([['run_completed', run.id]]);
    expect(inbox.unread).toBe(1n);

    // Exactly once: the follow-up started again (a service that lost track of it) adds nothing.
    await h.app.temporal.startFollowup({
      runId: run.id,
      tenantId: 'acme',
      event: 'finished',
      activityQueue: followupTaskQueue(h.taskQueue),
      delivery: { maxAttempts: 1, initialIntervalMs: 100, maximumIntervalMs: 100 },
    });
    const db = await openDatabase(h.databaseUrl);
    try {
      const rows = await db.pool.query<{ n: string; t: string }>(
        `select (select count(*) from evidence where run_id = $1) as n, (select count(*) from attestations where run_id = $1) as t`,
        [run.id],
      );
      expect(rows.rows[0]).toEqual({ n: String(evidence.length), t: '2' });
    } finally {
      await db.close();
    }
  });

  it('`ameide evidence verify` accepts the untampered run, and names a changed evidence byte', async () => {
    const run = await start('sample', 'CALC-12');
    const ok = await runCli(h, 'evidence', 'verify', run.id);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/verified: \d+ evidence files, 2 attestations \(signed with the development key\)/);
    expect(ok.status).toBe(0);

    const { evidence } = await gov.listEvidence({ runId: run.id });
    const diff = evidence.find((e) => e.kind === 'diff')!;
    const path = fileURLToPath(diff.uri);
    const bytes = readFileSync(path);
    bytes[bytes.length - 2] ^= 1;
    writeFileSync(path, bytes);
    const bad = await runCli(h, 'evidence', 'verify', run.id);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain(`✗ diff.patch: sha256`);
    expect(bad.stdout).toMatch(/✗ attestation slsa-provenance: subject diff\.patch: the file's sha256 \w+ differs from the signed/);
    expect(bad.stdout).toMatch(/verification FAILED/);
  });

  it('a changed byte in a stored envelope fails its signature', async () => {
    const run = await start('sample', 'CALC-13');
    const db = await openDatabase(h.databaseUrl);
    try {
      // Re-encode the payload with one character changed, as an attacker with database access would.
      const { rows } = await db.pool.query<{ id: string; envelope: { payload: string } }>(
        `select id, envelope from attestations where run_id = $1 and predicate_type = $2`,
        [run.id, TEST_RESULT_TYPE],
      );
      const payload = Buffer.from(rows[0]!.envelope.payload, 'base64').toString().replace('"FAILED"', '"PASSED"').replace('"PASSED"', '"WARNED"');
      await db.pool.query(`update attestations set envelope = jsonb_set(envelope, '{payload}', to_jsonb($2::text)) where id = $1`, [
        rows[0]!.id,
        Buffer.from(payload).toString('base64'),
      ]);
    } finally {
      await db.close();
    }
    const bad = await runCli(h, 'evidence', 'verify', run.id);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/✗ attestation test-result: bad signature/);
  });

  it('a run whose tests fail does not meet the DoD, and its test result says FAILED', async () => {
    await applySample(h.acme, origin, { testCommand: 'echo "1 failing"; exit 1', testReports: [] }, 'failing');
    const run = await start('failing', 'CALC-14');
    expect(run.status).toBe(RunStatus.HANDED_OFF);
    expect(run.done!.met).toBe(false);
    const rule = (name: string) => run.done!.rules.find((r) => r.rule === name)!;
    expect(rule('run_completed')).toMatchObject({ passed: false });
    expect(rule('run_completed').detail).toMatch(/^the run ended handed_off: test phase failed/);
    expect(rule('tests_passed')).toMatchObject({ passed: false, detail: 'test command exited 1 (no test report)' });
    const { evidence, attestations } = await gov.listEvidence({ runId: run.id });
    expect(evidence.map((e) => e.kind)).toContain('handoff_bundle');
    const tr = attestations.find((a) => a.predicateType === TEST_RESULT_TYPE)!;
    expect(JSON.parse(Buffer.from(tr.envelope!.payload, 'base64').toString()).predicate.result).toBe('FAILED');
  });

  it('refuses a selector that is not exactly one, naming the field', async () => {
    await expect(gov.listEvidence({})).rejects.toThrow(/run_id: set exactly one of/);
    await expect(gov.listEvidence({ runId: 'nope' })).rejects.toThrow(/run "nope" not found/);
  });
});
