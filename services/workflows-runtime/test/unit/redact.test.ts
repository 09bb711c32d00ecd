import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MIN_FORM_LENGTH, Redactor, secretForms, StreamRedactor } from '../../src/guardrails/redact.js';

const M = '[REDACTED]';

/** Small seeded PRNG so a failing random case can be replayed from the seed in the message. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Feeds `input` to a fresh StreamRedactor cut at the given byte offsets (or as strings at char offsets). */
function stream(red: Redactor, input: Buffer | string, cuts: number[]): string {
  const s = new StreamRedactor(red);
  let out = '';
  let at = 0;
  for (const c of [...cuts, input.length]) {
    out += s.push(typeof input === 'string' ? input.slice(at, c) : input.subarray(at, c));
    at = c;
  }
  return out + s.flush();
}

/**
 * Independent oracle: every occurrence of every form (indexOf, overlapping), overlapping
 * occurrences merged, each merged run replaced by one marker.
 */
function reference(forms: readonly string[], text: string): string {
  const spans: Array<[number, number]> = [];
  for (const f of forms) for (let i = text.indexOf(f); i >= 0; i = text.indexOf(f, i + 1)) spans.push([i, i + f.length]);
  spans.sort((a, b) => a[0] - b[0]);
  let out = '';
  let pos = 0;
  let end = -1;
  for (const [s, e] of spans) {
    if (s < end) end = Math.max(end, e);
    else {
      out += text.slice(pos, s) + M;
      end = e;
    }
    pos = end;
  }
  return out + text.slice(pos);
}

describe('secretForms', () => {
  it('ignores secrets shorter than 4 characters, which would redact everything', () => {
    for (const s of ['', 'a', 'ab', 'abc']) expect(secretForms(s)).toEqual([]);
    const red = new Redactor(['', 'a', 'abc', undefined, null]);
    expect(red.empty).toBe(true);
    expect(red.redact('a abc b')).toBe('a abc b');
    expect(stream(red, 'a abc b', [2])).toBe('a abc b');
    expect(new Redactor(['abcd']).redact('xabcdx abc')).toBe(`x${M}x abc`);
  });

  it('is de-duplicated, longest first, and drops derived forms that are too short', () => {
    const forms = secretForms('correct horse battery');
    expect(new Set(forms).size).toBe(forms.length);
    for (let i = 1; i < forms.length; i++) expect(forms[i - 1]!.length).toBeGreaterThanOrEqual(forms[i]!.length);
    expect(forms).toContain('correct horse battery');
    expect(forms).toContain('correct%20horse%20battery');
    expect(forms).toContain('correct+horse+battery');
    for (const f of secretForms('abcd')) expect(f === 'abcd' || f.length >= MIN_FORM_LENGTH).toBe(true);
  });
});

describe('Redactor', () => {
  // Chosen so that its base64 has `+` and `/` at every alignment: base64 and base64url forms differ.
  const secret = 'pa ss/w+rd=Zq9!é??>>~~';
  const red = new Redactor([secret]);

  it('hides the exact value', () => {
    expect(red.redact(`token=${secret};`)).toBe(`token=${M};`);
    expect(red.redact(`${secret}${secret} ${secret}`)).toBe(`${M}${M} ${M}`);
    expect(red.redact('nothing here')).toBe('nothing here');
  });

  it('hides base64 and base64url of the value alone', () => {
    for (const enc of ['base64', 'base64url'] as const) {
      const alone = Buffer.from(secret).toString(enc);
      expect(red.redact(`auth ${alone} end`)).toBe(`auth ${M} end`);
    }
    const padded = Buffer.from(secret).toString('base64');
    expect(red.redact(`auth ${padded.replace(/=+$/, '')} end`)).toBe(`auth ${M} end`);
  });

  for (const enc of ['base64', 'base64url'] as const) {
    it(`hides ${enc} of the value embedded at each byte alignment inside longer data`, () => {
      const cases: Array<[Buffer, Buffer]> = [];
      for (const p of ['', 'x', 'xx', 'xxx']) cases.push([Buffer.from(p), Buffer.from('y')]);
      for (let o = 0; o < 3; o++) for (let t = 0; t < 3; t++) cases.push([randomBytes(30 + o), randomBytes(17 + t)]);
      for (const [pre, post] of cases) {
        const encoded = Buffer.concat([pre, Buffer.from(secret), post]).toString(enc);
        const n = Buffer.byteLength(secret);
        // The characters carrying only secret bits, computed from this very stream.
        const first = Math.ceil((8 * pre.length) / 6);
        const last = Math.floor((8 * (pre.length + n)) / 6);
        const inner = encoded.slice(first, last);
        expect(inner).toMatch(enc === 'base64' ? /[+/]/ : /[-_]/);
        const out = red.redact(`data: ${encoded} end`);
        const ctx = `${enc} pre=${pre.length} post=${post.length}: ${out}`;
        for (let i = 0; i + MIN_FORM_LENGTH <= inner.length; i++) expect(out, ctx).not.toContain(inner.slice(i, i + MIN_FORM_LENGTH));
        // At most one partially-secret character is left on each side of the marker.
        const body = out.slice('data: '.length, -' end'.length);
        const at = body.indexOf(M);
        expect(at, ctx).toBeGreaterThanOrEqual(0);
        expect(at, ctx).toBeLessThanOrEqual(first);
        expect(body.length - at - M.length, ctx).toBeLessThanOrEqual(encoded.length - last);
        // Decoding whatever is left, joined or piece by piece, cannot give the secret back.
        for (const left of [body.replace(M, ''), ...body.split(M)]) {
          const decoded = Buffer.from(left, enc);
          expect(decoded.includes(Buffer.from(secret)), ctx).toBe(false);
          expect(decoded.includes(Buffer.from(secret).subarray(0, 6)) || decoded.includes(Buffer.from(secret).subarray(-6)), ctx).toBe(false);
        }
      }
    });
  }

  it('hides URL-encoded forms of a value with /, +, = and space', () => {
    const uri = encodeURIComponent(secret);
    expect(uri).toContain('%2F');
    for (const form of [uri, uri.replace(/%20/g, '+'), uri.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()), new URLSearchParams({ p: secret }).toString().slice(2)]) {
      expect(form).not.toBe(secret);
      expect(red.redact(`https://h/x?p=${form}&q=1`)).toBe(`https://h/x?p=${M}&q=1`);
    }
  });

  it('hides lower- and upper-case hex', () => {
    const hex = Buffer.from(secret).toString('hex');
    expect(red.redact(`0x${hex}.`)).toBe(`0x${M}.`);
    expect(red.redact(`0x${hex.toUpperCase()}.`)).toBe(`0x${M}.`);
  });

  it('leaves no fragment when many secrets overlap (shared prefixes and overlaps at different starts)', () => {
    const secrets = ['prefix-secret-1', 'prefix-secret-12', 'prefix-secret-123', 'secret-123-tail', 'cret-123-tail-end', 'prefix-s'];
    const many = new Redactor(secrets);
    expect(many.redact('a prefix-secret-1 b')).toBe(`a ${M} b`);
    expect(many.redact('a prefix-secret-12 b')).toBe(`a ${M} b`);
    expect(many.redact('a prefix-secret-1234 b')).toBe(`a ${M}4 b`);
    expect(many.redact('a prefix-secret-123-tail-end b')).toBe(`a ${M} b`);
    expect(many.redact('prefix-sprefix-secret-1')).toBe(`${M}${M}`);
    const text = 'x prefix-secret-123-tail-end y prefix-secret-12 z';
    expect(many.redact(text)).toBe(reference(many.forms, text));
    for (let c = 0; c <= text.length; c++) expect(stream(many, text, [c])).toBe(many.redact(text));
  });

  it('redactDeep copies nested objects, redacting strings (and keys) and leaving everything else alone', () => {
    const when = new Date(0);
    const buf = Buffer.from('raw');
    const input = {
      status: `failed: ${secret}`,
      n: 42,
      ok: false,
      none: null,
      undef: undefined,
      when,
      buf,
      nested: { list: [secret, 1, { deep: `x${secret}x` }, [true]], [secret]: 'key' },
      ['__proto__']: { polluted: 'x' as string },
    };
    input['__proto__'].polluted = `p ${secret}`;
    const before = JSON.stringify(input);
    const out = red.redactDeep(input);
    expect(JSON.stringify(input)).toBe(before);
    expect(input.nested.list[0]).toBe(secret);
    expect(Object.keys(input.nested)).toContain(secret);
    expect(out).not.toBe(input);
    expect(out.nested).not.toBe(input.nested);
    expect(out.nested.list).not.toBe(input.nested.list);
    expect(out.status).toBe(`failed: ${M}`);
    expect(out.nested.list).toEqual([M, 1, { deep: `x${M}x` }, [true]]);
    expect(out.nested).toHaveProperty([M], 'key');
    expect(Object.keys(out.nested)).not.toContain(secret);
    expect(out.n).toBe(42);
    expect(out.ok).toBe(false);
    expect(out.none).toBe(null);
    expect('undef' in out && out.undef === undefined).toBe(true);
    expect(out.when).toBe(when);
    expect(out.buf).toBe(buf);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({ polluted: `p ${M}` });
    expect(red.redactDeep(`s ${secret}`)).toBe(`s ${M}`);
    expect(red.redactDeep(7)).toBe(7);
    const cyclic: Record<string, unknown> = { s: secret };
    cyclic.self = cyclic;
    const copy = red.redactDeep(cyclic);
    expect(copy.s).toBe(M);
    expect(copy.self).toBe(copy);
  });
});

describe('StreamRedactor', () => {
  const secret = 'Xk9-secret_vAlue';
  const red = new Redactor([secret, 'another-one']);

  it('catches a secret split across 2 and 3 chunks, with a multi-byte character split elsewhere', () => {
    const text = `héllo ${secret} wörld 𝄞 ${Buffer.from('zz' + secret).toString('base64')} € ${secret}`;
    const bytes = Buffer.from(text);
    const whole = red.redact(text);
    expect(whole).not.toContain(secret);
    expect(whole).toContain('héllo');
    expect(whole).toContain('𝄞');
    const s0 = bytes.indexOf(secret);
    const eAcute = bytes.indexOf('é') + 1; // inside the 2-byte é
    const clef = bytes.indexOf('𝄞') + 2; // inside the 4-byte 𝄞
    for (let c = 0; c <= bytes.length; c++) expect(stream(red, bytes, [c])).toBe(whole);
    for (let a = s0 + 1; a < s0 + secret.length; a++) {
      for (let b = a + 1; b < s0 + secret.length; b++) expect(stream(red, bytes, [a, b])).toBe(whole);
      expect(stream(red, bytes, [eAcute, a])).toBe(whole);
      expect(stream(red, bytes, [eAcute, a, clef])).toBe(whole);
      expect(stream(red, bytes, [a, a + 2, clef])).toBe(whole);
    }
    // String chunks, at every UTF-16 position (also between the two halves of 𝄞).
    for (let c = 0; c <= text.length; c++) expect(stream(red, text, [c])).toBe(whole);
  });

  it('never emits half a surrogate pair, whatever the chunking', () => {
    const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
    const text = `${'𝄞😀'.repeat(40)} ${secret} ${'中𝄞'.repeat(40)}`;
    const bytes = Buffer.from(text);
    for (let step = 1; step <= 9; step++) {
      for (const input of [text, bytes]) {
        const s = new StreamRedactor(red);
        const pieces: string[] = [];
        for (let at = 0; at < input.length; at += step) pieces.push(s.push(typeof input === 'string' ? input.slice(at, at + step) : input.subarray(at, at + step)));
        pieces.push(s.flush());
        for (const p of pieces) expect(p).not.toMatch(lone);
        expect(pieces.join('')).toBe(red.redact(text));
      }
    }
  });

  it('holds back no more than (longest form - 1) characters', () => {
    const s = new StreamRedactor(red);
    const hold = red.maxFormLength - 1;
    let inLen = 0;
    let outLen = 0;
    for (let i = 0; i < 200; i++) {
      const chunk = 'abcdefghij'.repeat(1 + (i % 5));
      inLen += chunk.length;
      outLen += s.push(chunk).length;
      expect(inLen - outLen).toBeLessThanOrEqual(hold);
    }
    outLen += s.flush().length;
    expect(outLen).toBe(inLen);
  });

  it('treats a long run of overlapping occurrences as one redaction without buffering it', () => {
    const runRed = new Redactor(['aaaaaa']);
    const text = `x${'a'.repeat(20_000)}y aaaaaa z`;
    expect(runRed.redact(text)).toBe(`x${M}y ${M} z`);
    const s = new StreamRedactor(runRed);
    let out = '';
    for (let at = 0; at < text.length; at += 7) {
      out += s.push(text.slice(at, at + 7));
      expect(out.length).toBeLessThan(20); // the run is swallowed as it streams, not accumulated
    }
    expect(out + s.flush()).toBe(runRed.redact(text));
  });

  it('stays linear on large output in small chunks', () => {
    const big = new Redactor([secret, 'another-one', randomBytes(30).toString('base64url')]);
    const line = `${'lorem ipsum dolor sit amet '.repeat(3)}${secret}\n`;
    const text = line.repeat(Math.ceil(2_000_000 / line.length));
    const bytes = Buffer.from(text);
    const next = rng(1);
    const cuts: number[] = [];
    for (let at = next(1024) + 1; at < bytes.length; at += 1 + next(64 * 1024)) cuts.push(at);
    const started = performance.now();
    const out = stream(big, bytes, cuts);
    const ms = performance.now() - started;
    expect(out).toBe(big.redact(text));
    expect(out).not.toContain(secret);
    const s = new StreamRedactor(big);
    for (let i = 0; i < 100_000; i++) s.push('z');
    expect(s.flush().length).toBeGreaterThan(0);
    expect(ms).toBeLessThan(1500); // quadratic re-scanning of 2 MB would take far longer
  });

  it('property: random secrets, text and chunkings — stream equals whole-text redaction and no form survives', () => {
    const alphabet = [...'abcdefXYZ0123456789 -_=+/%\n', 'é', 'ß', '€', '中', '𝄞', '😀'];
    const seed = randomBytes(4).readUInt32LE();
    const next = rng(seed);
    const noise = (n: number): string => Array.from({ length: n }, () => alphabet[next(alphabet.length)]).join('');
    for (let iter = 0; iter < 150; iter++) {
      const secrets = Array.from({ length: 1 + next(3) }, () => randomBytes(30).toString('base64url').slice(0, 8 + next(33)));
      const secret = secrets[0]!;
      const r = new Redactor(secrets);
      const raw = Buffer.from(secret);
      // The stable inner part of the secret inside a longer encoded stream, computed from that stream.
      const mustVanish: string[] = [secret, ...secrets.slice(1)];
      const embed = (enc: 'base64' | 'base64url'): string => {
        const pre = randomBytes(next(7));
        const encoded = Buffer.concat([pre, raw, randomBytes(next(7))]).toString(enc);
        mustVanish.push(encoded.slice(Math.ceil((8 * pre.length) / 6), Math.floor((8 * (pre.length + raw.length)) / 6)));
        return encoded;
      };
      const forms = [
        secret,
        raw.toString('base64'),
        raw.toString('base64url'),
        embed('base64'),
        embed('base64'),
        embed('base64url'),
        encodeURIComponent(secret),
        raw.toString('hex'),
        raw.toString('hex').toUpperCase(),
        ...secrets.slice(1),
        secret.slice(0, -1), // a near miss: the oracle, not a guess, says what happens to it
      ];
      mustVanish.push(...forms.slice(0, 3), ...forms.slice(6, 9));
      let text = noise(next(40));
      for (const f of forms) text += f + noise(next(40));
      const bytes = Buffer.from(text);
      const cuts: number[] = [];
      const step = 1 + next(iter % 3 === 0 ? 4 : 80);
      for (let at = next(step) + 1; at < bytes.length; at += 1 + next(step)) cuts.push(at);
      const ctx = `seed=${seed} iter=${iter} secrets=${JSON.stringify(secrets)} cuts=${cuts.join(',')}`;
      const whole = r.redact(text);
      expect(whole, ctx).toBe(reference(r.forms, text));
      expect(stream(r, bytes, cuts), ctx).toBe(whole);
      for (const f of mustVanish) expect(whole.includes(f), `${ctx} form=${f}`).toBe(false);
      for (const s of secrets) for (const f of secretForms(s)) expect(whole.includes(f), `${ctx} form=${f}`).toBe(false);
    }
  });
});
