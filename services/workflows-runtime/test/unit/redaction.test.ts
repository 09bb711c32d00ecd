import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Redactor, secretForms, StreamRedactor } from '../../src/guardrails/redaction.js';

const secret = 'sk_live/7hQ2+pZ9 wX4=';
const r = new Redactor([secret]);
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

describe('redaction', () => {
  it('hides the exact value and its URL-encoded and hex forms', () => {
    for (const form of [secret, encodeURIComponent(secret), encodeURIComponent(secret).replace(/%20/g, '+'), Buffer.from(secret).toString('hex'), Buffer.from(secret).toString('hex').toUpperCase()]) {
      const out = r.redact(`before ${form} after`);
      expect(out).toBe('before [REDACTED] after');
    }
  });

  it('hides base64 and base64url of the secret wherever it sits in the encoded data', () => {
    for (const prefix of ['', 'x', 'xy', 'xyz']) {
      for (const enc of ['base64', 'base64url'] as const) {
        const encoded = Buffer.from(`${prefix}${secret}tail`).toString(enc);
        const out = r.redact(`data: ${encoded}`);
        expect(out).toContain('[REDACTED]');
        // What is left cannot be decoded back into the secret.
        expect(Buffer.from(out.replace('data: ', '').replace('[REDACTED]', ''), enc).toString('latin1')).not.toContain(secret.slice(4, 14));
      }
    }
  });

  it('ignores secrets too short to redact safely', () => {
    expect(secretForms('abc')).toEqual([]);
    expect(new Redactor(['abc']).redact('abc abc')).toBe('abc abc');
  });

  it('catches a secret split across chunks, also next to a multi-byte character split in two', () => {
    const text = `plain ${secret} b64 ${b64(secret)} ünïcödé ${secret}!`;
    const bytes = Buffer.from(text);
    for (const cuts of [[10], [7, 8], [12, 30, 31, 60], [bytes.indexOf('ü') + 1]]) {
      const s = new StreamRedactor(r);
      let out = '';
      let at = 0;
      for (const c of [...cuts, bytes.length]) {
        out += s.push(bytes.subarray(at, c));
        at = c;
      }
      out += s.flush();
      expect(out).toBe(r.redact(text));
      expect(out).not.toContain(secret);
      expect(out).toContain('ünïcödé');
    }
  });

  it('stream output equals whole-text redaction for random secrets and chunkings', () => {
    for (let i = 0; i < 200; i++) {
      const value = randomBytes(6 + (i % 25)).toString('base64url');
      const red = new Redactor([value, 'another-secret-value']);
      const text = `${randomBytes(20).toString('hex')} ${value} ${b64('xy' + value + 'z')} ${encodeURIComponent(value)} end`;
      const bytes = Buffer.from(text);
      const s = new StreamRedactor(red);
      let out = '';
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(Math.random() * 9);
        out += s.push(bytes.subarray(at, at + n));
        at += n;
      }
      out += s.flush();
      expect(out).toBe(red.redact(text));
      expect(out).not.toContain(value);
    }
  });

  it('redacts strings deep inside objects without touching the input', () => {
    const input = { a: [`token ${secret}`, 3], b: { c: secret, d: true } };
    const out = r.redactDeep(input);
    expect(out).toEqual({ a: ['token [REDACTED]', 3], b: { c: '[REDACTED]', d: true } });
    expect(input.b.c).toBe(secret);
  });
});
