import { StringDecoder } from 'node:string_decoder';

/**
 * Secrets shorter than this are never redacted (`secretForms` returns `[]`): a 1-3 character value
 * such as `1`, `abc` or `true` occurs in ordinary output so often that hiding it would shred
 * transcripts and hide nothing an attacker could not guess anyway.
 */
export const MIN_SECRET_LENGTH = 4;

/**
 * Derived forms (encodings, inner base64/base32 runs) shorter than this are dropped: a few base64
 * or hex characters match ordinary identifiers and hashes by chance. The exact value is always kept.
 */
export const MIN_FORM_LENGTH = 6;

/** The default replacement; visible and greppable so a reader knows something was hidden, not lost. */
export const DEFAULT_MARKER = '[REDACTED]';

/**
 * Longest run of whitespace that may sit between two characters of a base64 or base32 form, and
 * only if it holds exactly one `\n`: `base64` and `base32` wrap at 76 columns, `openssl base64` at
 * 64, MIME uses `\r\n`, and PEM or base64 pasted into YAML is indented. Longer runs, blank lines and
 * spaces without a line break end a match; that keeps the held-back span bounded.
 */
export const WRAP_GAP_MAX = 16;

/**
 * Longest separator run between two hex digits that still continues a hex form: 1-2 characters of
 * space, tab, `:` or `-` within a line (`de:ad`, `de-ad`, `de ad`, `hexdump -C`'s double space), or
 * up to this many spaces/tabs/`\r` around exactly one `\n` (`xxd -p` at 60 columns, `od -An -tx1`'s
 * leading space).
 */
export const HEX_GAP_MAX = 8;

/**
 * Lines of at most this many characters (without the line break) are checked for the layout of a
 * hex dump (`xxd`, `xxd -g1`, `xxd -u`, `hexdump -C`, `od -tx1` with offsets): an offset, hex bytes,
 * then optionally the ASCII column. Such lines are held back until complete, so this is part of the
 * stream's hold-back bound; it covers `xxd -c 128`.
 */
export const MAX_DUMP_LINE = 512;

/**
 * Shortest piece of a secret hidden when a line of a hex dump shows only part of it (see
 * {@link Redactor}): in the ASCII column, counted in characters the dump prints as themselves (not
 * as `.`, so a secret of non-ASCII characters, which dumps print as dots, cannot make runs of dots
 * match); in the hex area, this many bytes.
 */
export const DUMP_FRAGMENT_MIN = 8;

/**
 * The hex view skips a dump line's ASCII column and line break (so a match continues on the next
 * line) only if the line shows at least this many bytes: full lines of every common layout do, and
 * it bounds how many line ends one match can cross, hence the hold-back.
 */
const DUMP_MIN_LINE_BYTES = 8;
/** Offset plus separator of a dump line: up to 16 hex digits and `: `, `  ` or ` `. */
const DUMP_HEAD_MAX = 18;
/** What may separate two hex digits of a form when one sits at the end of a dump line and one at the start of the next. */
const NEUTRAL_MAX = 2 * MAX_DUMP_LINE;

const toBase64Url = (s: string): string => s.replace(/\+/g, '-').replace(/\//g, '_');
const byLengthDesc = (a: string, b: string): number => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0);
const unpad = (s: string): string => s.replace(/=+$/, '');

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32, padded, as the `base32` tool prints it (before wrapping). */
function base32(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_ALPHABET[(acc << (5 - bits)) & 31];
  return out + '='.repeat((8 - (out.length % 8)) % 8);
}

/**
 * The characters of an encoding with `bitsPerChar` bits per character that depend only on the
 * secret's bytes when it sits at byte offset `o` of a longer stream (o < the encoding's group size
 * in bytes: 3 for base64, 5 for base32). Characters at either edge also carry bits of the
 * neighbouring bytes, so they differ from stream to stream and are left out; what remains is the
 * same wherever the secret is embedded, which is what makes it findable.
 */
function innerRuns(bytes: Buffer, groupBytes: number, bitsPerChar: number, encode: (b: Buffer) => string): string[] {
  const out: string[] = [];
  for (let o = 0; o < groupBytes; o++) {
    // Trailing zero bytes keep `=` padding away from the characters we slice.
    const encoded = encode(Buffer.concat([Buffer.alloc(o), bytes, Buffer.alloc(groupBytes)]));
    out.push(encoded.slice(Math.ceil((8 * o) / bitsPerChar), Math.floor((8 * (o + bytes.length)) / bitsPerChar)));
  }
  return out;
}

function urlForms(value: string): string[] {
  let uri: string;
  try {
    uri = encodeURIComponent(value);
  } catch {
    return []; // lone surrogates: not a string any URL encoder would have produced from the secret
  }
  return [
    uri,
    uri.replace(/%20/g, '+'),
    uri.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    // application/x-www-form-urlencoded (URLSearchParams, curl --data-urlencode) also escapes !'()~.
    new URLSearchParams([['', value]]).toString().slice(1),
  ];
}

/** How `xxd` and `hexdump -C` print bytes in their ASCII column: printable ASCII as itself, the rest as `.`. */
function dumpRendering(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : '.';
  return out;
}

/** The forms of one secret, grouped by how they are searched for. */
interface Families {
  /** Matched exactly as they are: the value, URL encodings, lower/upper-case hex. */
  plain: string[];
  /** base64, base64url and base32 forms: matched with line breaks between any two characters. */
  wrapped: string[];
  /** Lower-case hex of the UTF-8 bytes: matched case-insensitively with separators and across dump lines. */
  hex: string;
  /** UTF-16LE and UTF-16BE bytes of the value. */
  utf16: Buffer[];
  /** The value as a hex dump's ASCII column shows it. */
  rendering: string;
}

function familiesOf(value: unknown): Families | undefined {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) return undefined;
  const keep = (f: string): boolean => f.length >= MIN_FORM_LENGTH;
  const bytes = Buffer.from(value, 'utf8');
  const b64 = bytes.toString('base64');
  const b64Inner = innerRuns(bytes, 3, 6, (b) => b.toString('base64'));
  const b32 = base32(bytes);
  const hex = bytes.toString('hex');
  const utf16le = Buffer.from(value, 'utf16le');
  return {
    plain: [value, ...[...urlForms(value), hex, hex.toUpperCase()].filter(keep)],
    wrapped: [
      b64,
      unpad(b64),
      toBase64Url(b64),
      toBase64Url(unpad(b64)),
      ...b64Inner,
      ...b64Inner.map(toBase64Url),
      b32,
      unpad(b32),
      ...innerRuns(bytes, 5, 5, base32),
    ].filter(keep),
    hex,
    utf16: [utf16le, Buffer.from(utf16le).swap16()],
    rendering: dumpRendering(bytes),
  };
}

/** `bytes` as text, when they are valid UTF-8 (so the encoding can also turn up in decoded output). */
function asUtf8Text(bytes: Buffer): string | undefined {
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : undefined;
}

/**
 * Every literal form in which a secret value can leak into output: the value itself, base64 and
 * base64url (padded, unpadded, and the stable inner runs for each of the three byte alignments
 * inside a longer base64 stream, as in `Authorization: Basic`, kubeconfigs or JSON blobs), base32
 * (padded, unpadded, inner runs for the five alignments), URL encodings (percent-encoded, `+` for
 * spaces, lower-case escapes, form encoding), lower/upper-case hex, and UTF-16LE/BE when those bytes
 * are also valid UTF-8 text (an ASCII secret: `s\0e\0…`). Tools re-encode secrets constantly, so
 * hiding only the exact value is not enough.
 *
 * {@link Redactor} finds more than these literal strings: base64/base32 broken by line breaks, hex
 * with separators or laid out as a hex dump, UTF-16 of any secret in byte mode, and pieces of a
 * secret cut at the edges of a hex dump's lines.
 *
 * Returns `[]` for values shorter than {@link MIN_SECRET_LENGTH}; derived forms shorter than
 * {@link MIN_FORM_LENGTH} are dropped. De-duplicated, longest first.
 */
export function secretForms(value: string): string[] {
  const f = familiesOf(value);
  if (!f) return [];
  const utf16 = f.utf16.map(asUtf8Text).filter((t): t is string => t !== undefined);
  return [...new Set([...f.plain, ...f.wrapped, ...utf16])].sort(byLengthDesc);
}

/**
 * A dense Aho-Corasick automaton over classes of code units: one table lookup per input unit
 * whatever the number of forms, which keeps redaction linear in the output size. `out[state]` is the
 * length of the longest form ending in that state (0: none), `depth[state]` the length of the
 * longest form prefix the input currently ends with (how much must be held back).
 */
class Automaton {
  readonly classOf: Uint16Array;
  readonly width: number;
  readonly next: Int32Array;
  readonly out: Int32Array;
  readonly depth: Int32Array;
  readonly maxLength: number;

  /**
   * `alphabet` gets classes even when no form uses it (hex digits must break a hex match rather than
   * count as separators); `aliases` maps a code unit onto another's class (`A` onto `a`).
   */
  constructor(forms: readonly string[], codeSpace: number, alphabet = '', aliases: Array<[string, string]> = []) {
    const classOf = new Uint16Array(codeSpace);
    let width = 1;
    for (const f of [alphabet, ...forms]) {
      for (let i = 0; i < f.length; i++) {
        const c = f.charCodeAt(i);
        if (classOf[c] === 0) classOf[c] = width++;
      }
    }
    for (const [from, to] of aliases) classOf[from.charCodeAt(0)] = classOf[to.charCodeAt(0)]!;
    const kids: Array<Map<number, number>> = [new Map()];
    const own: number[] = [0];
    const depth: number[] = [0];
    let maxLength = 0;
    for (const f of new Set(forms)) {
      let s = 0;
      for (let i = 0; i < f.length; i++) {
        const k = classOf[f.charCodeAt(i)]!;
        let t = kids[s]!.get(k);
        if (t === undefined) {
          t = kids.length;
          kids.push(new Map());
          own.push(0);
          depth.push(depth[s]! + 1);
          kids[s]!.set(k, t);
        }
        s = t;
      }
      own[s] = Math.max(own[s]!, f.length);
      maxLength = Math.max(maxLength, f.length);
    }
    const n = kids.length;
    const next = new Int32Array(n * width);
    const fail = new Int32Array(n);
    const out = new Int32Array(n);
    const queue: number[] = [];
    for (const [k, t] of kids[0]!) {
      next[k] = t;
      queue.push(t);
    }
    // Breadth first, so a state's failure state (shorter) is complete before the state is filled in.
    for (let q = 0; q < queue.length; q++) {
      const s = queue[q]!;
      const f = fail[s]!;
      out[s] = Math.max(own[s]!, out[f]!);
      next.copyWithin(s * width, f * width, f * width + width);
      for (const [k, t] of kids[s]!) {
        fail[t] = next[f * width + k]!;
        next[s * width + k] = t;
        queue.push(t);
      }
    }
    this.classOf = classOf;
    this.width = width;
    this.next = next;
    this.out = out;
    this.depth = Int32Array.from(depth);
    this.maxLength = maxLength;
  }
}

/**
 * Finds pieces of secrets in one column of one dump line (the ASCII column, or the hex digits of
 * the hex area) that are cut exactly at the column's edges, as a dump cuts a secret that spans lines:
 * a prefix of the secret ending the column (it continues on the next line), a suffix starting it
 * (continued from the previous line), a column that lies wholly inside the secret (a middle line),
 * and the whole secret. A piece counts only if it shows at least `min` characters of the secret:
 * anchored at a line edge, such a piece is no coincidence, while the same piece elsewhere in output
 * could be (and is not hidden).
 */
class DumpFragments {
  readonly #texts: Array<{ text: string; head: string; shown: Int32Array }> = [];
  /** Every `min`-character window of every text, with where it starts. */
  readonly #windows = new Map<string, Array<[number, number]>>();
  readonly #min: number;

  /** `isShown(c)`: the column shows that character of the secret itself (not a `.` placeholder). */
  constructor(texts: Iterable<string>, min: number, isShown: (c: string) => boolean) {
    this.#min = min;
    for (const text of new Set(texts)) {
      // shown[i]: characters of text[0, i) the column shows as themselves.
      const shown = new Int32Array(text.length + 1);
      for (let i = 0; i < text.length; i++) shown[i + 1] = shown[i]! + (isShown(text[i]!) ? 1 : 0);
      if (shown[text.length]! < min) continue;
      const t = this.#texts.push({ text, head: text.slice(0, min), shown }) - 1;
      for (let p = 0; p + min <= text.length; p++) {
        if (shown[p + min]! === shown[p]!) continue; // a column starting with `min` dots is everyday binary
        const w = text.slice(p, p + min);
        const list = this.#windows.get(w);
        if (list) list.push([t, p]);
        else this.#windows.set(w, [[t, p]]);
      }
    }
  }

  get empty(): boolean {
    return this.#texts.length === 0;
  }

  /** Calls `hide(i, j)` for each such piece `col[i, j)`. */
  find(col: string, hide: (i: number, j: number) => void): void {
    const min = this.#min;
    const k = col.length;
    if (k < min || this.#texts.length === 0) return;
    // The column starts inside a text.
    for (const [t, p] of this.#windows.get(col.slice(0, min)) ?? []) {
      if (p === 0) continue; // starts the text: handled below
      const { text, shown } = this.#texts[t]!;
      const n = text.length;
      if (n - p <= k) {
        if (shown[n]! - shown[p]! >= min && text.startsWith(col.slice(0, n - p), p)) hide(0, n - p);
      } else if (shown[p + k]! - shown[p]! >= min && text.startsWith(col, p)) {
        hide(0, k);
      }
    }
    // A text starts inside the column.
    for (const { text, head, shown } of this.#texts) {
      for (let at = col.indexOf(head); at >= 0; at = col.indexOf(head, at + 1)) {
        const len = k - at;
        if (len >= text.length) {
          if (col.startsWith(text, at)) hide(at, at + text.length);
        } else if (shown[len]! >= min && text.startsWith(col.slice(at))) {
          hide(at, k);
        }
      }
    }
  }
}

/** Everything a scan needs for one input kind: JS strings (UTF-16 code units) or bytes (as latin1 strings). */
interface Matcher {
  bytes: boolean;
  marker: string;
  plain: Automaton;
  wrapped: Automaton;
  hex: Automaton;
  /** Pieces of secrets in dump ASCII columns (as the dump renders them). */
  asciiPieces: DumpFragments;
  /** Pieces of secrets' hex in a dump line's hex area (a dump cut off mid-secret). */
  hexPieces: DumpFragments;
  /** Longest literal form minus one, in this kind's units: always held back, as before the views existed. */
  minHold: number;
}

function buildMatcher(families: readonly Families[], marker: string, bytes: boolean): Matcher {
  const plain: string[] = [];
  for (const f of families) {
    if (bytes) {
      for (const p of f.plain) plain.push(Buffer.from(p, 'utf8').toString('latin1'));
      for (const u of f.utf16) plain.push(u.toString('latin1'));
    } else {
      plain.push(...f.plain);
      for (const u of f.utf16) {
        const t = asUtf8Text(u);
        if (t !== undefined) plain.push(t);
      }
    }
  }
  const ascii = 128; // base64, base32 and hex forms are ASCII
  const automata = {
    plain: new Automaton(plain, bytes ? 256 : 65536),
    wrapped: new Automaton(
      families.flatMap((f) => f.wrapped),
      ascii,
    ),
    hex: new Automaton(
      families.map((f) => f.hex),
      ascii,
      '0123456789abcdef',
      [...'ABCDEF'].map((c) => [c, c.toLowerCase()]),
    ),
  };
  return {
    bytes,
    marker: bytes ? Buffer.from(marker, 'utf8').toString('latin1') : marker,
    ...automata,
    asciiPieces: new DumpFragments(
      families.map((f) => f.rendering),
      DUMP_FRAGMENT_MIN,
      (c) => c !== '.',
    ),
    hexPieces: new DumpFragments(
      families.map((f) => f.hex),
      2 * DUMP_FRAGMENT_MIN,
      () => true,
    ),
    minHold: Math.max(automata.plain.maxLength, automata.wrapped.maxLength, automata.hex.maxLength) - 1,
  };
}

/** A dump line's layout, as offsets into the string it was read from. `asciiStart` is -1 without an ASCII column. */
interface DumpLine {
  hexStart: number;
  hexEnd: number;
  bytes: number;
  asciiStart: number;
  asciiEnd: number;
}

const DUMP_HEAD = /[0-9a-fA-F]{6,16}(?:: ?| {1,2})[0-9a-fA-F]{2}/y;
const NEXT_DUMP_HEAD = /\n(?=[0-9a-fA-F]{6,16}(?:: ?| {1,2})[0-9a-fA-F]{2})/g;
const DUMP_HEAD_PREFIX = /^(?:[0-9a-fA-F]{0,16}|[0-9a-fA-F]{6,16}(?::|: | {1,2})[0-9a-fA-F]?)$/;
const DUMP_OFFSET = /[0-9a-fA-F]{6,16}(?:: ?| {1,2})/y;
const HEX_GROUP = /(?:[0-9a-fA-F]{2})+/y;
const GROUP_SEPARATOR = / {1,2}/y;

function isSpaces(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (s.charCodeAt(i) !== 32) return false;
  return true;
}

function isPrintable(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/**
 * Reads `s[from, to)` (one line, with its line break) as a hex dump line: `xxd` (`offset: hex  ascii`),
 * `hexdump -C` (`offset  hex  |ascii|`) or `od -tx1` (`offset hex`). The ASCII column has one
 * character per byte, which pins down where the hex ends even when the column starts with text that
 * looks like hex. Runs once per candidate line, so it works on offsets into `s` without copying.
 */
function parseDumpLine(s: string, from: number, to: number): DumpLine | undefined {
  let end = to;
  if (end > from && s.charCodeAt(end - 1) === 10) end--;
  if (end > from && s.charCodeAt(end - 1) === 13) end--;
  DUMP_OFFSET.lastIndex = from;
  if (!DUMP_OFFSET.test(s)) return undefined;
  const hexStart = DUMP_OFFSET.lastIndex;
  const groupEnds: number[] = [];
  const digits: number[] = [];
  let total = 0;
  for (let i = hexStart; ;) {
    HEX_GROUP.lastIndex = i;
    if (!HEX_GROUP.test(s) || HEX_GROUP.lastIndex > end) break;
    total += HEX_GROUP.lastIndex - i;
    i = HEX_GROUP.lastIndex;
    groupEnds.push(i);
    digits.push(total);
    GROUP_SEPARATOR.lastIndex = i;
    if (!GROUP_SEPARATOR.test(s) || GROUP_SEPARATOR.lastIndex > end) break;
    i = GROUP_SEPARATOR.lastIndex;
  }
  // The longest hex area whose byte count matches an ASCII column after it.
  for (let j = groupEnds.length - 1; j >= 0; j--) {
    const hexEnd = groupEnds[j]!;
    const bytes = digits[j]! / 2;
    const bar = end - 1 - bytes; // hexdump -C: `  |ascii|`
    if (s.charCodeAt(end - 1) === 124 && bar - 1 > hexEnd && s.charCodeAt(bar - 1) === 124 && isSpaces(s, hexEnd, bar - 1) && isPrintable(s, bar, end - 1)) {
      return { hexStart, hexEnd, bytes, asciiStart: bar, asciiEnd: end - 1 };
    }
    const col = end - bytes; // xxd: `  ascii`
    if (col - hexEnd >= 2 && isSpaces(s, hexEnd, col) && isPrintable(s, col, end)) return { hexStart, hexEnd, bytes, asciiStart: col, asciiEnd: end };
  }
  const last = groupEnds.length - 1;
  if (last >= 0 && isSpaces(s, groupEnds[last]!, end)) return { hexStart, hexEnd: groupEnds[last]!, bytes: digits[last]! / 2, asciiStart: -1, asciiEnd: -1 };
  return undefined;
}

/**
 * The matching engine behind whole-text, byte and stream redaction (one code path, so they agree by
 * construction). It reads its input once, front to back, through three views, each with its own
 * automaton, and records every occurrence as a span of the input:
 *
 * - plain: the input as it is;
 * - wrapped: the input without line breaks ({@link WRAP_GAP_MAX}), for base64 and base32;
 * - hex: only hex digits, lower-cased, with separators ({@link HEX_GAP_MAX}) and dump offsets and
 *   ASCII columns between dump lines left out.
 *
 * Dump lines' ASCII columns are also checked for pieces of a secret. Output before the "frontier"
 * is final: the earliest input position where a form could still be starting (the start of the
 * longest form prefix each automaton is in), but no later than the longest literal form minus one
 * before the end of what has been read, and never past a line held back to see whether it is a dump
 * line. So ordinary output flows with the same small lag as before, and only output that looks like
 * the start of a wrapped or dumped secret waits, up to {@link Redactor.maxHoldBack}.
 */
class Scanner {
  readonly #m: Matcher;
  readonly #detect: boolean;
  #text = '';
  /** Input position of `#text[0]`. */
  #base = 0;
  /** Input before this is fed to every view. */
  #fed = 0;
  /** Input before this is emitted or swallowed by a marker. */
  #done = 0;
  /** The line being fed is known not to be a dump line (it is fed as it arrives). */
  #inPlainLine = false;
  #plain = 0;
  #wrapped = 0;
  #wrappedCount = 0;
  #wrappedGap = 0;
  #wrappedBreaks = 0;
  readonly #wrappedAt: Float64Array;
  #hex = 0;
  #hexCount = 0;
  #hexGap = 0;
  #hexBreaks = 0;
  #hexNeutral = 0;
  #hexBad = false;
  readonly #hexAt: Float64Array;
  #starts: number[] = [];
  #ends: number[] = [];
  /** Some form was found (for `contains`). */
  found = false;

  constructor(m: Matcher, detect = false) {
    this.#m = m;
    this.#detect = detect;
    this.#wrappedAt = new Float64Array(ringSize(m.wrapped.maxLength));
    this.#hexAt = new Float64Array(ringSize(m.hex.maxLength));
  }

  /** Feeds `text`; returns what is final. With `final`, everything is final and the scanner is spent. */
  write(text: string, final: boolean): string {
    if (text.length) this.#text += text;
    this.#feed(final);
    const end = this.#base + this.#text.length;
    const out = this.#emit(final ? end : this.#frontier());
    this.#text = this.#text.slice(this.#done - this.#base);
    this.#base = this.#done;
    return out;
  }

  #feed(final: boolean): void {
    const s = this.#text;
    const base = this.#base;
    const end = base + s.length;
    while (this.#fed < end) {
      const at = this.#fed;
      if (this.#inPlainLine) {
        const nl = s.indexOf('\n', at - base);
        const stop = nl < 0 ? end : base + nl + 1;
        this.#feedViews(at, stop);
        if (nl >= 0) this.#inPlainLine = false;
        continue;
      }
      // At the start of a line.
      DUMP_HEAD.lastIndex = at - base;
      const nl = s.indexOf('\n', at - base);
      if (DUMP_HEAD.test(s)) {
        if (nl < 0 && !final) {
          if (end - at < MAX_DUMP_LINE) return; // wait for the rest of the line
          this.#inPlainLine = true;
          continue;
        }
        const stop = nl < 0 ? end : base + nl + 1;
        const dump = (nl < 0 ? end : base + nl) - at < MAX_DUMP_LINE ? parseDumpLine(s, at - base, stop - base) : undefined;
        if (dump) this.#feedDumpLine(at, stop, dump, base);
        else this.#feedViews(at, stop);
        continue;
      }
      if (nl < 0) {
        const sofar = s.slice(at - base, Math.min(end, at + 20) - base);
        if (!final && sofar.length < 20 && DUMP_HEAD_PREFIX.test(sofar)) return; // may still become a dump line
        this.#inPlainLine = true;
        continue;
      }
      // Complete lines that are not dump lines: feed them up to the next line that may be one.
      NEXT_DUMP_HEAD.lastIndex = nl;
      const m = NEXT_DUMP_HEAD.exec(s);
      this.#feedViews(at, base + (m ? m.index : s.lastIndexOf('\n')) + 1);
    }
  }

  /**
   * Feeds input `[from, to)` to the three views in one pass, so each unit is read once. The hex view
   * sees only `[hexFrom, hexTo)`; the rest is "neutral" (dump offsets and ASCII columns): skipped,
   * but too much of it ({@link NEUTRAL_MAX}) still ends a match.
   */
  #feedViews(from: number, to: number, hexFrom = from, hexTo = to): void {
    const s = this.#text;
    const base = this.#base;
    const P = this.#m.plain;
    const W = this.#m.wrapped;
    const H = this.#m.hex;
    const pClass = P.classOf,
      pNext = P.next,
      pOut = P.out,
      pWidth = P.width;
    const wClass = W.classOf,
      wNext = W.next,
      wOut = W.out,
      wWidth = W.width;
    const hClass = H.classOf,
      hNext = H.next,
      hOut = H.out,
      hWidth = H.width;
    const wRing = this.#wrappedAt,
      wMask = wRing.length - 1;
    const hRing = this.#hexAt,
      hMask = hRing.length - 1;
    let p = this.#plain;
    let w = this.#wrapped,
      wCount = this.#wrappedCount,
      wGap = this.#wrappedGap,
      wBreaks = this.#wrappedBreaks;
    let h = this.#hex,
      hCount = this.#hexCount,
      hGap = this.#hexGap,
      hBreaks = this.#hexBreaks,
      hBad = this.#hexBad;
    let hNeutral = this.#hexNeutral;
    const hexStart = hexFrom - base;
    const hexEnd = hexTo - base;
    for (let i = from - base, e = to - base; i < e; i++) {
      const c = s.charCodeAt(i);
      p = pNext[p * pWidth + pClass[c]!]!;
      const pLen = pOut[p]!;
      if (pLen !== 0) this.#span(base + i + 1 - pLen, base + i + 1);
      const hexArea = i >= hexStart && i < hexEnd;
      if (c >= 128) {
        // Neither base64/base32 nor hex: ends a match in both views.
        w = 0;
        wGap = 0;
        wBreaks = 0;
        if (!hexArea) {
          if (++hNeutral > NEUTRAL_MAX) h = 0;
        } else {
          hBad = true;
          h = 0;
        }
        continue;
      }
      // wrapped view
      if (c === 32 || c === 9 || c === 13 || c === 10) {
        wGap++;
        if (c === 10) wBreaks++;
        if (wBreaks > 1 || wGap > WRAP_GAP_MAX) w = 0;
      } else {
        if (wGap !== 0) {
          if (wBreaks !== 1) w = 0;
          wGap = 0;
          wBreaks = 0;
        }
        const k = wClass[c]!;
        if (k === 0) w = 0;
        else {
          w = wNext[w * wWidth + k]!;
          wRing[wCount & wMask] = base + i;
          wCount++;
          const len = wOut[w]!;
          if (len !== 0) this.#span(wRing[(wCount - len) & wMask]!, base + i + 1);
        }
      }
      // hex view
      if (!hexArea) {
        if (++hNeutral > NEUTRAL_MAX) h = 0;
        continue;
      }
      const k = hClass[c]!;
      if (k === 0) {
        if (c === 32 || c === 9 || c === 58 || c === 45 || c === 13) hGap++;
        else if (c === 10) {
          hGap++;
          hBreaks++;
        } else hBad = true;
        if (hBad || hBreaks > 1 || hGap > HEX_GAP_MAX) h = 0;
        continue;
      }
      if (hGap !== 0 || hBad || hNeutral !== 0) {
        if (hBad || (hBreaks === 0 && hGap > 2)) h = 0;
        hGap = 0;
        hBreaks = 0;
        hBad = false;
        hNeutral = 0;
      }
      h = hNext[h * hWidth + k]!;
      hRing[hCount & hMask] = base + i;
      hCount++;
      const len = hOut[h]!;
      if (len !== 0) this.#span(hRing[(hCount - len) & hMask]!, base + i + 1);
    }
    this.#plain = p;
    this.#wrapped = w;
    this.#wrappedCount = wCount;
    this.#wrappedGap = wGap;
    this.#wrappedBreaks = wBreaks;
    this.#hex = h;
    this.#hexCount = hCount;
    this.#hexGap = hGap;
    this.#hexBreaks = hBreaks;
    this.#hexBad = hBad;
    this.#hexNeutral = hNeutral;
    this.#fed = to;
  }

  /** Feeds dump line `[from, to)`; `d` holds offsets into the text, which starts at input position `base`. */
  #feedDumpLine(from: number, to: number, d: DumpLine, base: number): void {
    // The offset, and (when the line is long enough to carry a secret on) the ASCII column and line
    // break, are invisible to hex matching, so hex continues from one line's bytes to the next's.
    this.#feedViews(from, to, base + d.hexStart, d.bytes >= DUMP_MIN_LINE_BYTES ? base + d.hexEnd : to);
    this.#pieces(base + d.hexStart, base + d.hexEnd, base + d.asciiStart, base + d.asciiEnd, d.asciiStart >= 0);
  }

  #span(start: number, end: number): void {
    this.#starts.push(start);
    this.#ends.push(end);
    this.found = true;
  }

  /**
   * Hides pieces of secrets cut at the edges of a dump line's hex area `[h0, h1)` and ASCII column
   * `[a0, a1)`: what a dump cut off mid-secret (`xxd | head`) shows, and, in a complete dump, the
   * suffix in the last line's ASCII column, which lies after the end of the hex match.
   */
  #pieces(h0: number, h1: number, a0: number, a1: number, hasAscii: boolean): void {
    const { asciiPieces, hexPieces } = this.#m;
    const s = this.#text;
    const base = this.#base;
    if (hasAscii && !asciiPieces.empty) asciiPieces.find(s.slice(a0 - base, a1 - base), (i, j) => this.#span(a0 + i, a0 + j));
    if (hexPieces.empty) return;
    let digits = '';
    const at: number[] = [];
    for (let i = h0 - base; i < h1 - base; i++) {
      const c = s.charCodeAt(i);
      if (c === 32) continue;
      digits += String.fromCharCode(c >= 65 && c <= 70 ? c + 32 : c);
      at.push(base + i);
    }
    hexPieces.find(digits, (i, j) => this.#span(at[i]!, at[j - 1]! + 1));
  }

  /** The earliest input position at which an occurrence may still be found. */
  #frontier(): number {
    // The last `minHold` units are never released early: the cadence callers saw before (output
    // lags by less than the longest literal form) stays, and only a form in progress adds to it.
    let f = this.#fed - this.#m.minHold;
    const d0 = this.#m.plain.depth[this.#plain]!;
    if (d0 !== 0) f = Math.min(f, this.#fed - d0);
    const d1 = this.#m.wrapped.depth[this.#wrapped]!;
    if (d1 !== 0) f = Math.min(f, this.#wrappedAt[(this.#wrappedCount - d1) & (this.#wrappedAt.length - 1)]!);
    const d2 = this.#m.hex.depth[this.#hex]!;
    if (d2 !== 0) f = Math.min(f, this.#hexAt[(this.#hexCount - d2) & (this.#hexAt.length - 1)]!);
    // Never hand out half a surrogate pair: writers would turn it into U+FFFD.
    if (!this.#m.bytes && f > this.#done) {
      const c = this.#text.charCodeAt(f - 1 - this.#base);
      if (c >= 0xd800 && c <= 0xdbff) f--;
    }
    return f;
  }

  /**
   * Emits input up to `frontier`, each maximal group of overlapping occurrences replaced by one
   * marker. Hiding the union of all occurrences leaves no fragment of a secret behind even when
   * different forms or secrets overlap; occurrences that merely touch get a marker each.
   */
  #emit(frontier: number): string {
    const starts = this.#starts;
    const ends = this.#ends;
    const s = this.#text;
    const base = this.#base;
    const marker = this.#m.marker;
    const pieces: string[] = [];
    let done = this.#done;
    if (starts.length) {
      const now: number[] = [];
      const laterStarts: number[] = [];
      const laterEnds: number[] = [];
      for (let i = 0; i < starts.length; i++) {
        if (starts[i]! < frontier) now.push(i);
        else {
          laterStarts.push(starts[i]!);
          laterEnds.push(ends[i]!);
        }
      }
      now.sort((x, y) => starts[x]! - starts[y]! || ends[y]! - ends[x]!);
      for (const i of now) {
        const start = starts[i]!;
        const end = ends[i]!;
        if (start < done) {
          if (end > done) done = end;
        } else {
          if (!this.#detect) pieces.push(s.slice(done - base, start - base), marker);
          done = end;
        }
      }
      this.#starts = laterStarts;
      this.#ends = laterEnds;
    }
    if (done < frontier) {
      if (!this.#detect) pieces.push(s.slice(done - base, frontier - base));
      done = frontier;
    }
    this.#done = done;
    return pieces.join('');
  }
}

function ringSize(n: number): number {
  let size = 1;
  while (size < n) size *= 2;
  return size;
}

/** Copy of a plain object or array graph; a `Map` from originals to copies keeps cycles intact. */
type Seen = Map<object, unknown>;

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

let matcherOf: (r: Redactor, bytes: boolean) => Matcher;

/**
 * Byte input is scanned in pieces of this size: `contains` can stop at the first piece with a hit,
 * and a large buffer is never turned into one huge string (V8 caps strings at about 512 MiB).
 */
const PIECE = 1 << 20;

/**
 * Hides every form of a run's secrets from text or bytes before they reach transcripts, status
 * updates, artifacts, Temporal history or error messages, and detects them for push protection.
 * Build one per run: the automata are compiled once (lazily, per input kind) and reused.
 *
 * What is found, for each secret of at least {@link MIN_SECRET_LENGTH} characters:
 * - every literal form of {@link secretForms} (the value, URL encodings, hex, base64, base32, …);
 * - base64, base64url and base32 forms with a line break (`\n` or `\r\n`, optionally indented, see
 *   {@link WRAP_GAP_MAX}) between any two characters, as `base64`, `openssl base64` and `base32` wrap;
 * - hex of the UTF-8 bytes in either case, with `:`, `-`, space or line-break separators between any
 *   two digits ({@link HEX_GAP_MAX}: `xxd -p`, `od -An -tx1`, `aa:bb`, `AA-BB`), and laid out as a hex
 *   dump (`xxd`, `hexdump -C`, `od -tx1`), where the offsets and ASCII columns between the bytes are
 *   skipped;
 * - in byte input, UTF-16LE and UTF-16BE of the value (`iconv -t UTF-16LE`/`UTF-16BE`/`UTF-16`; a
 *   BOM is simply outside the match); in text input, only when those bytes are valid UTF-8;
 * - pieces of a secret in a hex dump cut at a dump line boundary. A dump splits a secret across
 *   lines: its ASCII column shows a prefix at the end of one line, whole chunks on middle lines and a
 *   suffix at the start of the last line. The hex match covers everything from the first to the last
 *   hex digit of the secret, which includes the ASCII columns of all lines but the last. For that
 *   last column, and for a dump cut off mid-secret (`xxd | head`, where no complete hex form exists),
 *   a piece is also hidden when it shows at least {@link DUMP_FRAGMENT_MIN} characters of the secret
 *   (8 bytes, 16 digits, in the hex area) and is cut exactly at the column's edges: a prefix of the
 *   secret ending the column, a suffix starting it, or a column wholly inside the secret. The anchor
 *   at a column edge is what makes this sound: 8 characters of a secret anywhere in output are not
 *   hidden, since short pieces (`password`, `-----BEG`) occur in ordinary text all the time, but
 *   exactly at a dump line's edge they are no coincidence. Pieces shorter than 8 characters stay
 *   visible by design. A column starting with 8 `.` is not matched against a secret whose rendering
 *   has such a run (non-ASCII bytes): every binary dump has such columns.
 *
 * Not covered: other encodings (base85, quoted-printable, C `\x` escapes, `0x`-prefixed byte lists),
 * lower-case base32, hex of UTF-16, and dumps in other layouts (`hexdump` without `-C`, `od -c`).
 */
export class Redactor {
  /** All literal forms of all secrets ({@link secretForms}), longest first; exposed so callers can assert on or log their count. */
  readonly forms: readonly string[];
  /** Length of the longest literal form. Stream redaction holds back more: see {@link Redactor.maxHoldBack}. */
  readonly maxFormLength: number;
  /**
   * The most input a {@link StreamRedactor} holds back between calls: UTF-16 code units in text
   * mode (plus up to 3 bytes of an incomplete UTF-8 character when Buffers are pushed), bytes in
   * byte mode. It is the longest span an occurrence can cover plus one line waiting to be recognised
   * as a dump line ({@link MAX_DUMP_LINE}). For a form of L characters a wrapped occurrence spans at
   * most L·(1 + {@link WRAP_GAP_MAX}) units; a hex one (L hex digits) at most
   * L·(1 + {@link HEX_GAP_MAX} + 18) + (⌊L/16⌋ + 2)·{@link MAX_DUMP_LINE}, since every gap may also
   * hold a dump offset (≤ 18 units) and a dump line only lets a match continue past its ASCII column
   * when it shows at least 8 bytes, which bounds how many line ends one match crosses. That is the
   * worst case (6,256 units for a 40-byte ASCII secret, 13,080 for 100 bytes); in practice the
   * stream holds back the longest literal form minus one ({@link Redactor.maxFormLength} - 1, as it
   * always has) and more only while output looks like the start of a form. 0 when there is nothing
   * to redact.
   */
  readonly maxHoldBack: number;
  readonly marker: string;
  readonly #families: readonly Families[];
  #text: Matcher | undefined;
  #bytes: Matcher | undefined;

  static {
    matcherOf = (r, bytes) => (bytes ? (r.#bytes ??= buildMatcher(r.#families, r.marker, true)) : (r.#text ??= buildMatcher(r.#families, r.marker, false)));
  }

  /**
   * Accepts `undefined`/`null` entries so optional environment values can be passed straight in;
   * they and values shorter than {@link MIN_SECRET_LENGTH} are ignored.
   */
  constructor(secrets: Iterable<string | null | undefined>, marker: string = DEFAULT_MARKER) {
    const families: Families[] = [];
    const forms = new Set<string>();
    for (const s of secrets) {
      const f = familiesOf(s);
      if (!f) continue;
      families.push(f);
      for (const form of secretForms(s as string)) forms.add(form);
    }
    this.forms = [...forms].sort(byLengthDesc);
    this.maxFormLength = this.forms[0]?.length ?? 0;
    this.marker = marker;
    this.#families = families;
    let span = 0;
    for (const f of families) {
      const plain = Math.max(...f.plain.map((p) => Math.max(p.length, Buffer.byteLength(p))), ...f.utf16.map((u) => u.length));
      const wrapped = Math.max(0, ...f.wrapped.map((w) => w.length));
      const hex = f.hex.length;
      span = Math.max(span, plain, wrapped * (1 + WRAP_GAP_MAX), hex * (1 + HEX_GAP_MAX + DUMP_HEAD_MAX) + (Math.floor(hex / 16) + 2) * MAX_DUMP_LINE);
    }
    this.maxHoldBack = families.length ? span + MAX_DUMP_LINE : 0;
  }

  /** Lets hot paths skip redaction work (and stream buffering) when a run has no secrets. */
  get empty(): boolean {
    return this.#families.length === 0;
  }

  /** Redacts a complete text (command lines, error messages, status fields). */
  redact(text: string): string {
    if (this.empty || text.length < 1) return text;
    return new Scanner(matcherOf(this, false)).write(text, true);
  }

  /**
   * Redacts complete binary output byte-exactly: the result equals the input except where a form
   * was replaced by the UTF-8 bytes of the marker. NUL bytes and invalid UTF-8 pass through as they
   * are, and forms are matched as their UTF-8 (or UTF-16) bytes.
   */
  redactBuffer(data: Uint8Array): Buffer {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (this.empty || buf.length === 0) return buf;
    const scanner = new Scanner(matcherOf(this, true));
    const parts: Buffer[] = [];
    for (let at = 0; at < buf.length; at += PIECE) parts.push(Buffer.from(scanner.write(buf.toString('latin1', at, at + PIECE), false), 'latin1'));
    parts.push(Buffer.from(scanner.write('', true), 'latin1'));
    return Buffer.concat(parts);
  }

  /**
   * True when any form of any secret occurs in `data` (push protection: commit messages, file names,
   * blob contents). Bytes (`Buffer`/`Uint8Array`) are matched byte-exactly as in
   * {@link Redactor.redactBuffer}, so binary content around a secret does not hide it; strings as in
   * {@link Redactor.redact}. Dump-column pieces count too. Stops at the first megabyte with a hit.
   */
  contains(data: Uint8Array | string): boolean {
    if (this.empty || data.length === 0) return false;
    const bytes = typeof data !== 'string';
    const scanner = new Scanner(matcherOf(this, bytes), true);
    for (let at = 0; at < data.length && !scanner.found; at += PIECE) {
      const piece = bytes ? Buffer.from(data.buffer, data.byteOffset + at, Math.min(PIECE, data.length - at)).toString('latin1') : data.slice(at, at + PIECE);
      scanner.write(piece, false);
    }
    if (!scanner.found) scanner.write('', true);
    return scanner.found;
  }

  /**
   * A redacted deep copy of a status update or report before it is serialised: secrets hide in
   * nested fields (and, occasionally, keys) as easily as in top-level strings. Walks plain objects
   * and arrays only; other values (numbers, `Date`, `Buffer`, `Error`, class instances) are returned
   * as they are, so convert those to strings first if they may carry secrets. Never mutates `value`.
   */
  redactDeep<T>(value: T): T {
    return this.#deep(value, new Map()) as T;
  }

  #deep(value: unknown, seen: Seen): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (typeof value !== 'object' || value === null) return value;
    if (seen.has(value)) return seen.get(value);
    if (Array.isArray(value)) {
      const out: unknown[] = new Array(value.length);
      seen.set(value, out);
      for (let i = 0; i < value.length; i++) if (i in value) out[i] = this.#deep(value[i], seen);
      return out;
    }
    if (!isPlainObject(value)) return value;
    const out: Record<string, unknown> = Object.create(Object.getPrototypeOf(value) as object | null) as Record<string, unknown>;
    seen.set(value, out);
    for (const [k, v] of Object.entries(value)) {
      // defineProperty, not assignment: a `__proto__` key must stay data, not become the prototype.
      Object.defineProperty(out, this.redact(k), { value: this.#deep(v, seen), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
}

/**
 * Redacts command output as it streams, so secrets never reach the transcript or the live tail
 * even when a secret is split across chunks. Two modes, chosen by the first call after construction
 * or a flush (mixing them in one stream throws):
 *
 * - text: `push`/`flush` return strings; Buffers are UTF-8 decoded incrementally (invalid bytes
 *   become U+FFFD), so use this only where text is wanted;
 * - bytes: `pushBytes`/`flushBytes` take and return Buffers and are byte-exact: output bytes equal
 *   input bytes except where a form was replaced by the marker's UTF-8 bytes. Use this for
 *   transcripts: command output may hold NUL bytes, binary data or invalid UTF-8.
 *
 * In both modes the concatenation of everything returned equals whole-input redaction
 * (`redact`/`redactBuffer`), whatever the chunking, and at most {@link Redactor.maxHoldBack} units
 * are held back, so memory and work stay linear in the output size.
 */
export class StreamRedactor {
  readonly #redactor: Redactor;
  #decoder = new StringDecoder('utf8');
  #mode: 'text' | 'bytes' | undefined;
  #scanner: Scanner | undefined;

  constructor(redactor: Redactor) {
    this.#redactor = redactor;
  }

  #use(mode: 'text' | 'bytes'): Scanner | undefined {
    if (this.#mode && this.#mode !== mode) throw new Error(`StreamRedactor: already streaming ${this.#mode}; flush before switching modes`);
    this.#mode = mode;
    if (this.#redactor.empty) return undefined;
    return (this.#scanner ??= new Scanner(matcherOf(this.#redactor, mode === 'bytes')));
  }

  /**
   * Text mode: returns the redacted text that is safe to emit now. Buffers are UTF-8 decoded
   * incrementally; a string chunk first flushes any incomplete byte sequence left by a previous buffer.
   */
  push(chunk: Buffer | Uint8Array | string): string {
    const scanner = this.#use('text');
    const text = typeof chunk === 'string' ? this.#decoder.end() + chunk : this.#decoder.write(chunk);
    return scanner ? scanner.write(text, false) : text;
  }

  /** Text mode: emits everything still held back; call once when the command's output ends. */
  flush(): string {
    const scanner = this.#use('text');
    const rest = this.#decoder.end();
    this.#reset();
    return scanner ? scanner.write(rest, true) : rest;
  }

  /** Byte mode: returns the redacted bytes that are safe to emit now (possibly empty). */
  pushBytes(chunk: Uint8Array): Buffer {
    const scanner = this.#use('bytes');
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    return scanner ? Buffer.from(scanner.write(buf.toString('latin1'), false), 'latin1') : buf;
  }

  /** Byte mode: emits everything still held back; call once when the command's output ends. */
  flushBytes(): Buffer {
    const scanner = this.#use('bytes');
    this.#reset();
    return scanner ? Buffer.from(scanner.write('', true), 'latin1') : Buffer.alloc(0);
  }

  #reset(): void {
    this.#mode = undefined;
    this.#scanner = undefined;
    this.#decoder = new StringDecoder('utf8');
  }
}
