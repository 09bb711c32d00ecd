import { describe, expect, it } from 'vitest';
import { dnsSlug, PreviewHosts } from '../../src/previews/hosts.js';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

describe('preview host names', () => {
  it('keeps ids that are DNS labels up to case, and hashes the rest into one', () => {
    expect(dnsSlug('CALC-1')).toBe('calc-1');
    expect(dnsSlug('acme')).toBe('acme');
    const hashed = ['web/Login.Page', 'a--b', '-lead', 'x'.repeat(64), '__', 'run-deadbeef', 'RUN-DEADBEEF', 'xn--p1ai', 'épée'];
    for (const id of hashed) {
      const s = dnsSlug(id);
      expect(s, id).toMatch(LABEL);
      expect(s, id).not.toContain('--');
      expect(s, id).not.toMatch(/^run-[0-9a-f]{8}$/);
      expect(s, id).toMatch(/[0-9a-f]{6}$/);
    }
    expect(dnsSlug('web/Login.Page')).toMatch(/^web-login-page-[0-9a-f]{6}$/);
    expect(dnsSlug('__')).toMatch(/^x[0-9a-f]{6}$/);
    expect(dnsSlug('x'.repeat(64))).toHaveLength(63);
    // The hash is of the id itself: ids that only differ in what was replaced stay apart.
    expect(dnsSlug('a.b')).not.toBe(dnsSlug('a/b'));
  });

  it('builds URLs and parses Host headers back', () => {
    const h = new PreviewHosts('preview.localhost', 8090);
    const runId = '1a2b3c4d-0000-4000-8000-000000000000';
    expect(h.runUrl('acme', runId)).toBe('http://run-1a2b3c4d.acme.preview.localhost:8090/');
    expect(h.aliasUrl('acme', 'CALC-1')).toBe('http://calc-1.acme.preview.localhost:8090/');
    expect(h.aliasUrl('acme', '')).toBe('');
    expect(new PreviewHosts('preview.example.com', 80).runUrl('acme', runId)).toBe('http://run-1a2b3c4d.acme.preview.example.com/');
    expect(new PreviewHosts('preview.localhost', 0).runUrl('acme', runId)).toBe('');

    expect(h.parse('run-1a2b3c4d.acme.preview.localhost:8090')).toEqual({ label: { kind: 'run', id8: '1a2b3c4d' }, tenantSlug: 'acme' });
    expect(h.parse('CALC-1.Acme.Preview.Localhost.')).toEqual({ label: { kind: 'alias', slug: 'calc-1' }, tenantSlug: 'acme' });
    for (const bad of [
      undefined,
      '',
      'preview.localhost',
      'acme.preview.localhost',
      'a.b.acme.preview.localhost',
      '-x.acme.preview.localhost',
      'x.acme.preview.localhost.evil',
      'x.acmepreview.localhost',
    ])
      expect(h.parse(bad), String(bad)).toBeUndefined();
  });
});
