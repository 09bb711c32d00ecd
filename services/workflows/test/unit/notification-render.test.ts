import { describe, expect, it } from 'vitest';
import type { NotificationContent } from '../../src/notifications/content.js';
import { renderEmail, webhookPayload } from '../../src/notifications/render.js';

/** A completed run with everything a notification can say. */
function completed(): NotificationContent {
  return {
    event: 'run_completed',
    tenantId: 'acme',
    occurredAt: '2026-01-02T03:04:05.000Z',
    run: {
      id: '1a2b3c4d-0000-4000-8000-000000000000',
      status: 'completed',
      definition: 'implement',
      workItemId: 'PBI-42',
      title: 'Add login',
      branch: 'ameide/pbi-42',
      baseCommit: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      headCommit: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
      filesChanged: 3,
      insertions: 120,
      deletions: 7,
      tests: { passed: 41, failed: 0, skipped: 2, failingTests: [] },
      pullRequest: { provider: 'github', number: 17, url: 'https://git.example/acme/app/pull/17', state: 'open' },
      durationMs: 192_000,
    },
    preview: { url: 'http://run-1a2b3c4d.acme.preview.example:8090/', aliasUrl: 'http://pbi-42.acme.preview.example:8090/' },
    dod: {
      met: true,
      rules: [
        { rule: 'tests_pass', passed: true, detail: '41 passed' },
        { rule: 'preview_healthy', passed: true, detail: 'answered 200' },
      ],
    },
    evidence: [
      { kind: 'diff', name: 'diff.patch', uri: 'file:///evidence/diff.patch', sha256: 'c0ffee'.repeat(10) + 'abcd', sizeBytes: 2048 },
      { kind: 'test_report', name: 'reports/junit.xml', uri: 'file:///evidence/junit.xml', sha256: 'deadbeef'.repeat(8), sizeBytes: 512 },
    ],
    links: { run: 'https://ameide.example/runs/1a2b3c4d-0000-4000-8000-000000000000' },
  };
}

/** A run handed off after its test phase failed, with an impediment. */
function handedOff(): NotificationContent {
  const c = completed();
  return {
    ...c,
    event: 'run_failed',
    run: {
      ...c.run,
      status: 'handed_off',
      error: 'test phase failed: 2 tests failed\nstack…',
      tests: { passed: 39, failed: 2, skipped: 0, failingTests: ['login > rejects a wrong password', 'login > locks after 5 tries'] },
      handoffUri: 'file:///handoffs/run.tar.gz',
    },
    preview: undefined,
    dod: { met: false, rules: [{ rule: 'tests_pass', passed: false, detail: '2 failed' }] },
    impediment: { id: 'imp-1', cause: 'run_handed_off', reason: '2 tests failed after 3 attempts', phase: 'test', handoffUri: 'file:///handoffs/run.tar.gz' },
  };
}

describe('notification e-mails', () => {
  it('says in the subject what happened to which work item', () => {
    expect(renderEmail(completed()).subject).toBe('[ameide] PBI-42 "Add login" — run completed, Definition of Done met');
    expect(renderEmail({ ...completed(), dod: { met: false, rules: [] } }).subject).toBe(
      '[ameide] PBI-42 "Add login" — run completed, Definition of Done not met',
    );
    expect(renderEmail({ ...completed(), event: 'preview_live' }).subject).toBe(
      '[ameide] PBI-42 "Add login" — preview live: http://run-1a2b3c4d.acme.preview.example:8090/',
    );
    expect(renderEmail(handedOff()).subject).toBe('[ameide] PBI-42 "Add login" — run handed off: test phase failed');
    const failed = handedOff();
    failed.run.status = 'failed';
    failed.impediment = undefined;
    expect(renderEmail(failed).subject).toBe('[ameide] PBI-42 "Add login" — run failed: test phase failed: 2 tests failed');
    expect(renderEmail({ ...completed(), event: 'run_cancelled' }).subject).toBe('[ameide] PBI-42 "Add login" — run cancelled');
    expect(renderEmail({ ...handedOff(), event: 'impediment_raised' }).subject).toBe(
      '[ameide] PBI-42 "Add login" — impediment raised: 2 tests failed after 3 attempts',
    );
    expect(renderEmail({ ...handedOff(), event: 'dod_failed' }).subject).toBe('[ameide] PBI-42 "Add login" — Definition of Done not met: tests_pass');
  });

  it('keeps the subject on one line whatever the title holds', () => {
    const c = completed();
    c.run.title = 'Evil\r\nBcc: victim@example.com\r\n\r\nbody';
    const { subject } = renderEmail(c);
    expect(subject).not.toMatch(/[\r\n]/);
    expect(subject).toContain('Evil Bcc: victim@example.com body');
  });

  it('has the run summary, preview URLs, checklist and evidence in the text', () => {
    const { text } = renderEmail(completed());
    expect(text).toContain('PBI-42 "Add login": run completed, Definition of Done met.');
    expect(text).toContain('1a2b3c4d-0000-4000-8000-000000000000');
    expect(text).toContain('ameide/pbi-42');
    expect(text).toContain('aaaaaaaaaaaa..bbbbbbbbbbbb');
    expect(text).toContain('3 files changed, +120 −7');
    expect(text).toContain('41 passed, 0 failed, 2 skipped');
    expect(text).toContain('github #17 (open) https://git.example/acme/app/pull/17');
    expect(text).toContain('3m 12s');
    expect(text).toContain('http://run-1a2b3c4d.acme.preview.example:8090/');
    expect(text).toContain('http://pbi-42.acme.preview.example:8090/');
    expect(text).toContain('Definition of Done: met');
    expect(text).toContain('✓ tests_pass: 41 passed');
    expect(text).toContain('✓ preview_healthy: answered 200');
    expect(text).toMatch(/diff +diff\.patch {2}sha256 c0ffeec0ffee {2}2\.0 KiB/);
    expect(text).toMatch(/test_report {2}reports\/junit\.xml {2}sha256 deadbeefdead {2}512 B/);
    expect(text).toContain('Open the run: https://ameide.example/runs/1a2b3c4d-0000-4000-8000-000000000000');
  });

  it('has the failing tests, the failed rules and the impediment of a handed-off run', () => {
    const { text, html } = renderEmail(handedOff());
    expect(text).toContain('- login > rejects a wrong password');
    expect(text).toContain('✗ tests_pass: 2 failed');
    expect(text).toContain('Definition of Done: not met');
    expect(text).toMatch(/Cause +run handed off/);
    expect(text).toMatch(/Phase +test/);
    expect(text).toMatch(/Reason +2 tests failed after 3 attempts/);
    expect(text).toContain('file:///handoffs/run.tar.gz');
    expect(text).not.toContain('Preview');
    expect(html).toContain('login &gt; rejects a wrong password');
    expect(html).toContain('✗');
    expect(html).toContain('Impediment');
  });

  it('escapes every value in the HTML and links only http(s) URLs', () => {
    const c = completed();
    c.run.title = '<script>alert("x")</script>';
    c.run.branch = '"><img src=x onerror=alert(1)>';
    c.dod!.rules[0].detail = '<b>bold</b> & co';
    c.evidence[0].name = "a'b<c>.txt";
    c.run.pullRequest!.url = 'javascript:alert(1)';
    const { html, text } = renderEmail(c);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).not.toContain('<img');
    expect(html).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('&lt;b&gt;bold&lt;/b&gt; &amp; co');
    expect(html).toContain('a&#39;b&lt;c&gt;.txt');
    expect(html).not.toContain('href="javascript:');
    expect(html).toContain('<a href="http://run-1a2b3c4d.acme.preview.example:8090/">');
    expect(html).toContain('<a href="https://ameide.example/runs/1a2b3c4d-0000-4000-8000-000000000000">');
    // The text is plain: the title is shown as it is.
    expect(text).toContain('<script>alert("x")</script>');
  });
});

describe('notification webhook payloads', () => {
  it('has the delivery id and the content in snake_case', () => {
    const p = webhookPayload(handedOff(), 'dlv-1');
    expect(p).toMatchObject({
      id: 'dlv-1',
      event: 'run_failed',
      tenant_id: 'acme',
      occurred_at: '2026-01-02T03:04:05.000Z',
      run: {
        id: '1a2b3c4d-0000-4000-8000-000000000000',
        status: 'handed_off',
        work_item_id: 'PBI-42',
        title: 'Add login',
        base_commit: 'a'.repeat(40),
        files_changed: 3,
        tests: { passed: 39, failed: 2, skipped: 0, failing_tests: ['login > rejects a wrong password', 'login > locks after 5 tries'] },
        pull_request: { provider: 'github', number: 17, url: 'https://git.example/acme/app/pull/17', state: 'open' },
        handoff_uri: 'file:///handoffs/run.tar.gz',
        duration_ms: 192_000,
      },
      preview: null,
      dod: { met: false, rules: [{ rule: 'tests_pass', passed: false, detail: '2 failed' }] },
      impediment: { id: 'imp-1', cause: 'run_handed_off', phase: 'test', handoff_uri: 'file:///handoffs/run.tar.gz' },
      links: { run: 'https://ameide.example/runs/1a2b3c4d-0000-4000-8000-000000000000' },
    });
    expect(p.evidence[1]).toEqual({
      kind: 'test_report',
      name: 'reports/junit.xml',
      uri: 'file:///evidence/junit.xml',
      sha256: 'deadbeef'.repeat(8),
      size_bytes: 512,
    });
    // No camelCase key anywhere.
    expect(JSON.stringify(p)).not.toMatch(/"[a-z]+[A-Z][A-Za-z]*":/);
  });

  it('leaves out unknown run fields and nulls absent sections', () => {
    const c = completed();
    c.occurredAt = undefined;
    c.preview = undefined;
    c.dod = undefined;
    c.run = { id: 'r', status: 'cancelled', definition: 'd', workItemId: 'w', title: 't', branch: 'b' };
    const p = JSON.parse(JSON.stringify(webhookPayload({ ...c, event: 'run_cancelled' }, 'dlv-2'))) as Record<string, unknown>;
    expect(Object.keys(p)).toEqual(['id', 'event', 'tenant_id', 'run', 'preview', 'dod', 'evidence', 'impediment', 'links']);
    expect(p.run).toEqual({ id: 'r', status: 'cancelled', definition: 'd', work_item_id: 'w', title: 't', branch: 'b' });
    expect(p.preview).toBeNull();
    expect(p.dod).toBeNull();
    expect(p.impediment).toBeNull();
  });
});
