import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCommand } from '../../src/activities/exec.js';
import { DUMP_FRAGMENT_MIN, MAX_DUMP_LINE, MIN_FORM_LENGTH, Redactor, secretForms, StreamRedactor } from '../../src/guardrails/redact.js';

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
    for (const form of [
      uri,
      uri.replace(/%20/g, '+'),
      uri.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
      new URLSearchParams({ p: secret }).toString().slice(2),
    ]) {
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
        for (let at = 0; at < input.length; at += step)
          pieces.push(s.push(typeof input === 'string' ? input.slice(at, at + step) : input.subarray(at, at + step)));
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
      const secrets = Array.from({ length: 1 + next(3) }, () =>
        randomBytes(30)
          .toString('base64url')
          .slice(0, 8 + next(33)),
      );
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
      // '€' around each form: the noise has line breaks and base64 characters, and a form followed by
      // "\n=" (say) is a wrapped base64 form the redactor rightly hides but the literal oracle misses.
      for (const f of forms) text += `€${f}€` + noise(next(40));
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

// ---------------------------------------------------------------------------------------------
// Encodings produced by the real tools. A missing tool makes execFileSync throw (ENOENT), so the
// test fails rather than skips.

const TOOLS = ['base64', 'base32', 'openssl', 'xxd', 'od', 'hexdump', 'iconv'];

function tool(file: string, args: string[], input: Buffer | string): Buffer {
  return execFileSync(file, args, { input, maxBuffer: 64 << 20 });
}

/** A secret from a seeded PRNG: no repeated 8-character windows, so "no fragment left" is a sharp check. */
function secretOf(seed: number, length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const next = rng(seed);
  for (;;) {
    const s = Array.from({ length }, () => alphabet[next(alphabet.length)]).join('');
    const windows = new Set(Array.from({ length: length - 7 }, (_, i) => s.slice(i, i + 8)));
    if (windows.size === length - 7) return s;
  }
}

/** Fails if any buffer holds the secret or any {@link DUMP_FRAGMENT_MIN}-byte window of it. */
function expectNoTrace(haystacks: Buffer[], secret: Buffer, ctx: string): void {
  for (const h of haystacks) {
    for (let i = 0; i + DUMP_FRAGMENT_MIN <= secret.length; i++) {
      expect(h.includes(secret.subarray(i, i + DUMP_FRAGMENT_MIN)), `${ctx}: bytes ${i}.. of the secret in ${JSON.stringify(h.toString('latin1'))}`).toBe(
        false,
      );
    }
  }
}

/** The redacted output cut at the markers, and all of it with the markers taken out: what a reader could decode. */
function leftovers(out: string): string[] {
  const pieces = out.split(M);
  return [...pieces, pieces.join('')];
}

/** base64 or base64url text decoded at each of the 4 character alignments (whitespace and other characters dropped). */
function decodeBase64(text: string): Buffer[] {
  const clean = text.replace(/[^A-Za-z0-9+/_-]/g, '');
  return [0, 1, 2, 3].map((shift) => Buffer.from(clean.slice(shift), 'base64'));
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 decoded at each of the 8 character alignments. */
function decodeBase32(text: string): Buffer[] {
  const clean = [...text].filter((c) => BASE32.includes(c));
  return [0, 1, 2, 3, 4, 5, 6, 7].map((shift) => {
    const out: number[] = [];
    let acc = 0;
    let bits = 0;
    for (const c of clean.slice(shift)) {
      acc = (acc << 5) | BASE32.indexOf(c);
      bits += 5;
      if (bits >= 8) {
        bits -= 8;
        out.push((acc >>> bits) & 0xff);
        acc &= (1 << bits) - 1;
      }
    }
    return Buffer.from(out);
  });
}

/** Hex digits decoded at both nibble alignments. */
function decodeHex(digits: string): Buffer[] {
  const clean = digits.replace(/[^0-9a-fA-F]/g, '');
  return [0, 1].map((shift) => Buffer.from(clean.slice(shift, clean.length - ((clean.length - shift) % 2)), 'hex'));
}

/**
 * The hex digits a reader would take from a (redacted) dump: offsets dropped at real line starts,
 * ASCII columns (`xxd`: after two spaces, `hexdump -C`: from ` |`) dropped, per piece between
 * markers (the test texts have no spaces, so these cuts are unambiguous).
 */
function dumpDigits(out: string, layout: 'xxd' | 'hexdump' | 'plain'): string[] {
  const pieces = out.split(M).map((piece, k) =>
    piece
      .split('\n')
      .map((line, j) => {
        let l = j > 0 || k === 0 ? line.replace(/^[0-9a-fA-F]{6,16}(?:: ?| {1,2})/, '') : line;
        const cut = layout === 'xxd' ? l.indexOf('  ') : layout === 'hexdump' ? l.search(/ +\|/) : -1;
        if (cut >= 0) l = l.slice(0, cut);
        else if (layout !== 'plain' && j === 0 && k > 0) l = ''; // a marker in the ASCII column: the rest of the line is text
        return l.replace(/[^0-9a-fA-F]/g, '');
      })
      .join(''),
  );
  return [...pieces, pieces.join('')];
}

/** Stream `input` through pushBytes cut at random offsets; also through text-mode push when it is valid UTF-8. */
function expectStreamsAgree(red: Redactor, input: Buffer, seed: number, ctx: string): void {
  const whole = red.redactBuffer(input);
  const next = rng(seed);
  for (let round = 0; round < 4; round++) {
    const step = [1, 7, 64, 4096][round]!;
    const s = new StreamRedactor(red);
    const parts: Buffer[] = [];
    for (let at = 0; at < input.length;) {
      const n = 1 + next(step);
      parts.push(s.pushBytes(input.subarray(at, at + n)));
      at += n;
    }
    parts.push(s.flushBytes());
    expect(Buffer.concat(parts).equals(whole), `${ctx}: byte stream in pieces of up to ${step}`).toBe(true);
  }
  const text = input.toString('utf8');
  if (Buffer.from(text).equals(input)) expect(stream(red, input, [Math.floor(input.length / 3), Math.floor(input.length / 2)]), ctx).toBe(red.redact(text));
}

describe('encodings made by real tools', () => {
  it('has every tool these tests use', () => {
    for (const t of TOOLS) expect(execFileSync('which', [t]).toString().trim(), t).toMatch(/\//);
  });

  // 90 characters: long enough that every wrapped form spans two or more lines.
  const long = secretOf(11, 90);
  const longBytes = Buffer.from(long);
  const red = new Redactor([long, 'unrelated-secret']);

  for (const [file, args, width] of [
    ['base64', [], 76],
    ['openssl', ['base64'], 64],
  ] as const) {
    const name = [file, ...args].join(' ');
    it(`hides wrapped base64 from \`${name}\`, alone and at every byte alignment, with \\n and \\r\\n`, () => {
      const alone = tool(file, [...args], long).toString();
      expect(alone.split('\n')[0]!.length).toBe(width);
      for (const eol of ['\n', '\r\n']) {
        expect(red.redact(alone.replace(/\n/g, eol))).toBe(`${M}${eol}`);
      }
      expect(red.redact(alone.replace(/=+\n$/, '\n'))).toBe(`${M}\n`); // unpadded
      for (let o = 0; o < 3; o++) {
        for (const pre of [3 * 7 + o, 3 * 30 + o]) {
          const input = Buffer.concat([Buffer.from('p'.repeat(pre - 1) + '\0'), longBytes, Buffer.from('\xff trailing text after it', 'latin1')]);
          for (const eol of ['\n', '\r\n']) {
            const encoded = tool(file, [...args], input)
              .toString()
              .replace(/\n/g, eol);
            const ctx = `${name} pre=${pre} eol=${JSON.stringify(eol)}`;
            const out = red.redact(encoded);
            expect(out, ctx).toContain(M);
            expectNoTrace(leftovers(out).flatMap(decodeBase64), longBytes, ctx);
            // Only the edges of the encoding are left: what precedes the secret and what follows it.
            expect(Buffer.from(out.split(M)[0]!.replace(/\s/g, ''), 'base64').length, ctx).toBeLessThanOrEqual(pre);
            expect(red.contains(encoded), ctx).toBe(true);
            expectStreamsAgree(red, Buffer.from(encoded), pre + o, ctx);
          }
        }
      }
    });
  }

  it('hides base32 from `base32` (wrapped, padded and unpadded) at all 5 byte alignments', () => {
    // 92 bytes do not fill the last 5-byte group, so `base32` pads (and puts the padding on a line of its own).
    const odd = secretOf(16, 92);
    const oddBytes = Buffer.from(odd);
    const r = new Redactor([odd, 'unrelated-secret']);
    const alone = tool('base32', [], odd).toString();
    expect(alone).toMatch(/=+\n$/);
    expect(alone.split('\n').length).toBeGreaterThan(2);
    expect(r.redact(alone)).toBe(`${M}\n`);
    const unpadded = alone.replace(/=/g, '');
    expect(r.redact(unpadded)).toMatch(/^\[REDACTED\]\s*$/);
    for (let o = 0; o < 5; o++) {
      for (const pre of [5 + o, 5 * 20 + o]) {
        for (const padded of [true, false]) {
          const input = Buffer.concat([randomBytes(pre), oddBytes, randomBytes(1 + o)]);
          let encoded = tool('base32', [], input).toString();
          if (!padded) encoded = encoded.replace(/=/g, '');
          const ctx = `base32 pre=${pre} padded=${padded}`;
          const out = r.redact(encoded);
          expect(out, ctx).toContain(M);
          expectNoTrace(leftovers(out).flatMap(decodeBase32), oddBytes, ctx);
          expect(r.contains(encoded), ctx).toBe(true);
          expectStreamsAgree(r, Buffer.from(encoded), pre * 10 + o, ctx);
        }
      }
    }
  });

  // 40 characters span three or four 16-byte dump lines, at each of the 16 column offsets.
  const mid = secretOf(12, 40);
  const midBytes = Buffer.from(mid);
  const dumpRed = new Redactor([mid, 'unrelated-secret']);
  const dumps: Array<[string, string[], 'xxd' | 'hexdump' | 'plain']> = [
    ['xxd', [], 'xxd'],
    ['xxd', ['-g1', '-u'], 'xxd'],
    ['xxd', ['-p'], 'plain'],
    ['hexdump', ['-C'], 'hexdump'],
    ['od', ['-An', '-tx1'], 'plain'],
    ['od', ['-tx1'], 'plain'],
    ['hexdump', ['-v', '-e', '/1 "%02x:"'], 'plain'],
    ['hexdump', ['-v', '-e', '/1 "%02X-"'], 'plain'],
    ['hexdump', ['-v', '-e', '/1 "%02x "'], 'plain'],
    ['hexdump', ['-v', '-e', '/1 "%02X "'], 'plain'],
  ];
  for (const [file, args, layout] of dumps) {
    const name = [file, ...args].join(' ');
    it(`hides hex from \`${name}\`, the secret starting at every column of a line`, () => {
      for (let pre = 0; pre < 16; pre++) {
        const input = Buffer.from(`${'0123456789abcdef'.slice(0, pre)}:${mid}+tail=text`);
        const dump = tool(file, args, input).toString();
        const ctx = `${name} pre=${pre}`;
        const out = dumpRed.redact(dump);
        expect(out, ctx).toContain(M);
        // Nothing of it in the hex, nor (for xxd and hexdump -C) in the ASCII column.
        expectNoTrace(dumpDigits(out, layout).flatMap(decodeHex), midBytes, ctx);
        expectNoTrace([Buffer.from(out)], midBytes, ctx);
        // The bytes before and after the secret are still there.
        const digits = dumpDigits(out, layout).at(-1)!.toLowerCase();
        expect(digits.startsWith(Buffer.from(`${'0123456789abcdef'.slice(0, pre)}:`).toString('hex')), ctx).toBe(true);
        expect(digits, ctx).toContain(Buffer.from('+tail=text').toString('hex'));
        expect(dumpRed.contains(dump), ctx).toBe(true);
        expectStreamsAgree(dumpRed, Buffer.from(dump), pre, ctx);
      }
    });
  }

  it('hides pieces of the secret that a cut-off xxd or hexdump -C shows at line ends and starts', () => {
    for (const [file, args] of [
      ['xxd', []],
      ['hexdump', ['-C']],
    ] as const) {
      for (let pre = 0; pre < 16; pre++) {
        const full = tool(file, [...args], Buffer.from(`${'#'.repeat(pre)}${mid} after`))
          .toString()
          .split('\n');
        for (let lines = 1; lines <= full.length; lines++) {
          const dump = full.slice(0, lines).join('\n') + '\n';
          const ctx = `${file} pre=${pre} lines=${lines}`;
          const out = dumpRed.redact(dump);
          expectNoTrace([Buffer.from(out)], midBytes, ctx);
          expectNoTrace(dumpDigits(out, file === 'xxd' ? 'xxd' : 'hexdump').flatMap(decodeHex), midBytes, ctx);
          expectStreamsAgree(dumpRed, Buffer.from(dump), pre * 10 + lines, ctx);
        }
      }
    }
    // Anchored at a dump line's edge only: 8 characters of the secret in ordinary text stay.
    expect(dumpRed.redact(`${mid.slice(0, 12)} and ${mid.slice(-12)}`)).toBe(`${mid.slice(0, 12)} and ${mid.slice(-12)}`);
  });

  for (const [target, bom, order] of [
    ['UTF-16LE', false, 'le'],
    ['UTF-16BE', false, 'be'],
    ['UTF-16', true, 'le'],
  ] as const) {
    it(`hides UTF-16 from \`iconv -t ${target}\`${bom ? ' (with BOM)' : ''}, ASCII and non-ASCII secrets`, () => {
      for (const secret of [mid, 'pässwörd-Ünïcødé-ß€𝄞-42']) {
        const r = new Redactor([secret]);
        const bytes = tool('iconv', ['-f', 'UTF-8', '-t', target], `before ${secret} after\n`);
        const le = order === 'le' ? bytes : Buffer.from(bytes).swap16();
        expect(le.subarray(0, 2).equals(Buffer.from([0xff, 0xfe])), target).toBe(bom);
        const out = r.redactBuffer(bytes);
        const ctx = `${target} ${secret}`;
        expect(out.includes(Buffer.from(M)), ctx).toBe(true);
        // Decode what is left as UTF-16 at both byte alignments: no 8 characters of the secret.
        const decoded = [0, 1].flatMap((shift) => {
          const b = Buffer.from(out.subarray(shift, out.length - ((out.length - shift) % 2)));
          return [(order === 'le' ? b : b.swap16()).toString('utf16le')];
        });
        for (const d of decoded)
          for (let i = 0; i + DUMP_FRAGMENT_MIN <= secret.length; i++) expect(d, ctx).not.toContain(secret.slice(i, i + DUMP_FRAGMENT_MIN));
        expect(r.contains(bytes), ctx).toBe(true);
        expectStreamsAgree(r, bytes, secret.length, ctx);
        // Byte-exact around the marker: the BOM and the text are untouched. For an ASCII secret the
        // other byte order's form also occurs, shifted by one byte, so one NUL next to it may go too.
        const enc = Buffer.from(secret, 'utf16le');
        const form = order === 'le' ? enc : Buffer.from(enc).swap16();
        const at = bytes.indexOf(form);
        const m = out.indexOf(Buffer.from(M));
        expect(at - m, ctx).toBeLessThanOrEqual(1);
        expect(out.subarray(0, m).equals(bytes.subarray(0, m)), ctx).toBe(true);
        const after = out.subarray(m + M.length);
        expect(bytes.length - (at + form.length) - after.length, ctx).toBeLessThanOrEqual(1);
        expect(bytes.subarray(bytes.length - after.length).equals(after), ctx).toBe(true);
      }
      // Text mode sees UTF-16 of an ASCII secret too: its bytes are valid UTF-8 (`s\0e\0…`).
      const ascii = tool('iconv', ['-f', 'UTF-8', '-t', target], `x ${mid} y`);
      const text = stream(dumpRed, ascii, [5, 40]);
      expect(text).toContain(M);
      // Dropping the NULs decodes ASCII UTF-16 (either order).
      for (let i = 0; i + DUMP_FRAGMENT_MIN <= mid.length; i++) expect(text.replace(/\0/g, '')).not.toContain(mid.slice(i, i + DUMP_FRAGMENT_MIN));
    });
  }
});

describe('byte-exact redaction', () => {
  const secret = secretOf(13, 24);
  const red = new Redactor([secret, 'pässwörd-1234']);

  it('passes any bytes through unchanged (NUL, invalid UTF-8, binary) except the secret', () => {
    for (let i = 0; i < 20; i++) {
      const noise = randomBytes(5000);
      expect(red.redactBuffer(noise).equals(noise)).toBe(true);
      const pre = Buffer.concat([randomBytes(i * 37), Buffer.from([0, 0xff, 0xc3, 0x28, 0xe2, 0x82])]);
      const post = Buffer.concat([Buffer.from([0x80, 0, 0xf0, 0x9f]), randomBytes(i * 53)]);
      for (const s of [secret, 'pässwörd-1234']) {
        const input = Buffer.concat([pre, Buffer.from(s), post]);
        // Random bytes could hold another (encoded) form by chance only with negligible probability.
        expect(red.redactBuffer(input).equals(Buffer.concat([pre, Buffer.from(M), post])), `i=${i}`).toBe(true);
        expectStreamsAgree(red, input, i, `i=${i}`);
      }
    }
    // Text mode would have replaced the invalid bytes with U+FFFD.
    const input = Buffer.from([0xff, 0xfe, 0, 0x41]);
    expect(red.redactBuffer(input).equals(input)).toBe(true);
    expect(stream(red, input, [])).toBe('\ufffd\ufffd\0A');
  });

  it('byte mode and text mode of one stream cannot be mixed until it is flushed', () => {
    const s = new StreamRedactor(red);
    s.pushBytes(Buffer.from('abc'));
    expect(() => s.push('x')).toThrow(/flush/);
    expect(s.flushBytes().toString()).toBe('abc');
    expect(s.push(`a ${secret}`) + s.flush()).toBe(`a ${M}`);
    expect(new StreamRedactor(new Redactor([])).pushBytes(Buffer.from([0xff])).equals(Buffer.from([0xff]))).toBe(true);
  });

  it('property: random binary streams with every kind of form — pushBytes equals redactBuffer, contains() agrees', () => {
    const seed = randomBytes(4).readUInt32LE();
    const next = rng(seed);
    const secrets = [secretOf(seed, 20 + next(30)), secretOf(seed + 1, 10 + next(10))];
    const r = new Redactor(secrets);
    const raw = Buffer.from(secrets[0]!);
    const wrap = (s: string, w: number): string => s.replace(new RegExp(`(.{${w}})`, 'g'), '$1\n');
    const variants: Array<() => Buffer> = [
      () => raw,
      () => Buffer.from(wrap(Buffer.concat([randomBytes(next(5)), raw, randomBytes(next(5))]).toString('base64'), 4 + next(76))),
      () => Buffer.from(raw.toString('hex').replace(/../g, (h) => h + [':', '-', ' ', ''][next(4)]!)),
      () => Buffer.from(secrets[0]!, 'utf16le'),
      () => Buffer.from(secrets[0]!, 'utf16le').swap16(),
      () => Buffer.from(encodeURIComponent(secrets[0]!)),
      () => tool('base32', ['-w', String(4 + next(76))], Buffer.concat([randomBytes(next(6)), raw, randomBytes(next(6))])),
      // A dump's lines start at line starts, as when a command prints one.
      () => Buffer.concat([Buffer.from('\n'), tool('xxd', next(2) ? [] : ['-g1', '-u'], Buffer.concat([randomBytes(next(20)), raw, randomBytes(next(20))]))]),
      () => Buffer.concat([Buffer.from('\n'), tool('hexdump', ['-C'], Buffer.concat([randomBytes(next(20)), raw, randomBytes(next(20))]))]),
    ];
    for (let iter = 0; iter < 60; iter++) {
      const parts: Buffer[] = [randomBytes(next(300))];
      const used: number[] = [];
      for (let k = next(4); k > 0; k--) {
        const v = next(variants.length);
        used.push(v);
        parts.push(variants[v]!(), randomBytes(next(300)));
      }
      const input = Buffer.concat(parts);
      const ctx = `seed=${seed} iter=${iter} used=${used.join(',')}`;
      const out = r.redactBuffer(input);
      expect(r.contains(input), ctx).toBe(!out.equals(input));
      if (used.length) expect(out.includes(Buffer.from(M)), ctx).toBe(true);
      expectNoTrace([out], raw, ctx);
      expectStreamsAgree(r, input, seed + iter, ctx);
    }
  });
});

describe('command transcripts (runCommand with a redactor)', () => {
  it('keep the output bytes exactly, NUL and invalid UTF-8 included, with the secret and its encodings hidden', async () => {
    const secret = secretOf(17, 30);
    const dir = mkdtempSync(join(tmpdir(), 'redact-'));
    const transcriptPath = join(dir, 't.log');
    const env = { PATH: '/usr/local/bin:/usr/bin:/bin', S: secret };
    const r = await runCommand({
      command: `printf 'a\\000b\\377\\376 %s\\n' "$S"; printf %s "$S" | base64 -w 7; printf 'x%s' "$S" | xxd; printf %s "$S" | iconv -t UTF-16LE`,
      cwd: dir,
      env,
      timeoutMs: 10_000,
      transcriptPath,
      redactor: new Redactor([secret]),
    });
    expect(r.exitCode).toBe(0);
    const transcript = readFileSync(transcriptPath);
    const head = Buffer.from([0x61, 0, 0x62, 0xff, 0xfe, 0x20]);
    expect(
      transcript.subarray(transcript.indexOf(head), transcript.indexOf(head) + head.length + M.length + 1).equals(Buffer.concat([head, Buffer.from(`${M}\n`)])),
    ).toBe(true);
    expectNoTrace([transcript], Buffer.from(secret), 'transcript');
    const lines = transcript.toString('latin1').split('\n');
    expectNoTrace(
      leftovers(
        lines
          .slice(
            2,
            lines.findIndex((l) => l.startsWith('00000000')),
          )
          .join('\n'),
      ).flatMap(decodeBase64),
      Buffer.from(secret),
      'base64',
    );
    expect(transcript.includes(Buffer.from(secret, 'utf16le').subarray(0, 16))).toBe(false);
    expect(transcript.toString('latin1').split(M).length - 1).toBeGreaterThanOrEqual(4);
    expect(r.outputTail).not.toContain(secret.slice(0, 8));
  });
});

describe('Redactor.contains (push protection)', () => {
  const secret = secretOf(14, 32);
  const red = new Redactor(['another-secret-value', secret]);

  it('finds every kind of form inside binary data, and nothing in data without one', () => {
    const bin = (b: Buffer | string): Buffer =>
      Buffer.concat([randomBytes(1000), Buffer.from([0, 0xff, 0xfe]), Buffer.from(b), Buffer.from([0x80, 0]), randomBytes(1000)]);
    const forms: Array<[string, Buffer | string]> = [
      ['exact', secret],
      ['base64', Buffer.from(secret).toString('base64')],
      ['wrapped base64', tool('base64', ['-w', '20'], `xy${secret}z`)],
      ['base32', tool('base32', [], `w${secret}`)],
      ['hex', Buffer.from(secret).toString('hex').toUpperCase()],
      ['xxd', tool('xxd', [], `pre-${secret}-post`)],
      ['hexdump -C', tool('hexdump', ['-C'], `${secret}`)],
      ['utf-16le', Buffer.from(secret, 'utf16le')],
      ['utf-16be with BOM', tool('iconv', ['-f', 'UTF-8', '-t', 'UTF-16BE'], `\ufeff${secret}`)],
      ['url', encodeURIComponent(secret)],
    ];
    for (const [name, form] of forms) {
      expect(red.contains(bin(form)), name).toBe(true);
      expect(red.contains(Buffer.from(form)), name).toBe(true);
    }
    expect(red.contains(`commit message: ${secret}`)).toBe(true);
    expect(red.contains(new Uint8Array(Buffer.from(`x${secret}x`)))).toBe(true);
    for (let i = 0; i < 20; i++) expect(red.contains(randomBytes(20_000))).toBe(false);
    expect(red.contains(bin(secret.slice(0, -1)))).toBe(false);
    expect(red.contains('')).toBe(false);
    expect(new Redactor([]).contains(bin(secret))).toBe(false);
    // A hit beyond the first scanned megabyte, and right at the edge between two.
    for (const at of [(1 << 20) - 5, 3 << 20]) {
      const big = Buffer.alloc(4 << 20, 'a');
      Buffer.from(secret).copy(big, at);
      expect(red.contains(big), `at ${at}`).toBe(true);
    }
  });
});

describe('StreamRedactor hold-back bound', () => {
  it('holds back at most maxHoldBack bytes, even while output looks like the start of a wrapped or dumped secret', () => {
    const secret = secretOf(15, 60);
    const red = new Redactor([secret]);
    expect(red.maxHoldBack).toBeGreaterThan(red.maxFormLength);
    expect(red.maxHoldBack).toBeGreaterThanOrEqual(MAX_DUMP_LINE);
    // Forms of a near miss (the last character differs): long partial matches that never complete.
    const miss = Buffer.from(secret.slice(0, -1) + (secret.endsWith('x') ? 'y' : 'x'));
    const indent = (text: string): string => text.replace(/\n/g, '\r\n      ');
    const input = Buffer.concat([
      Buffer.from(indent(tool('base64', ['-w', '2'], miss).toString())),
      Buffer.from(indent(tool('base32', ['-w', '3'], miss).toString())),
      Buffer.from(indent(tool('xxd', ['-p', '-c', '1'], miss).toString())),
      Buffer.from(`00000000: ${'61'.repeat(10)}`), // may become a dump line: held until it is complete
      randomBytes(3000),
    ]);
    expect(red.redactBuffer(input).equals(input)).toBe(true);
    for (const step of [1, 13, 500]) {
      const s = new StreamRedactor(red);
      let inBytes = 0;
      let outBytes = 0;
      let maxHeld = 0;
      for (let at = 0; at < input.length; at += step) {
        const chunk = input.subarray(at, at + step);
        inBytes += chunk.length;
        outBytes += s.pushBytes(chunk).length;
        maxHeld = Math.max(maxHeld, inBytes - outBytes);
      }
      outBytes += s.flushBytes().length;
      expect(outBytes).toBe(inBytes);
      expect(maxHeld, `step ${step}`).toBeLessThanOrEqual(red.maxHoldBack);
      // More than the fixed minimum is held while a wrapped form is in progress.
      expect(maxHeld, `step ${step}`).toBeGreaterThan(red.maxFormLength - 1);
    }
  });
});
