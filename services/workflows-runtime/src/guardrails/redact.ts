import { StringDecoder } from 'node:string_decoder';

/**
 * Secrets shorter than this are never redacted (`secretForms` returns `[]`): a 1-3 character value
 * such as `1`, `abc` or `true` occurs in ordinary output so often that hiding it would shred
 * transcripts and hide nothing an attacker could not guess anyway.
 */
export const MIN_SECRET_LENGTH = 4;

/**
 * Derived forms (encodings, inner base64 runs) shorter than this are dropped: a few base64 or hex
 * characters match ordinary identifiers and hashes by chance. The exact value is always kept.
 */
export const MIN_FORM_LENGTH = 6;

/** The default replacement; visible and greppable so a reader knows something was hidden, not lost. */
export const DEFAULT_MARKER = '[REDACTED]';

const toBase64Url = (s: string): string => s.replace(/\+/g, '-').replace(/\//g, '_');
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const byLengthDesc = (a: string, b: string): number => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0);

/**
 * The base64 characters that depend only on the secret's bytes when it sits at byte offset `o`
 * (0, 1 or 2 mod 3) of a longer stream. Characters at either edge also carry bits of the
 * neighbouring bytes, so they differ from stream to stream and are left out; what remains is the
 * same wherever the secret is embedded, which is what makes it findable.
 */
function base64InnerRuns(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let o = 0; o < 3; o++) {
    // Two trailing zero bytes keep `=` padding away from the characters we slice.
    const encoded = Buffer.concat([Buffer.alloc(o), bytes, Buffer.alloc(2)]).toString('base64');
    out.push(encoded.slice(Math.ceil((8 * o) / 6), Math.floor((8 * (o + bytes.length)) / 6)));
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

/**
 * Every form in which a secret value can leak into output: the value itself, base64 and base64url
 * (padded, unpadded, and the stable inner runs for each of the three byte alignments inside a
 * longer base64 stream, as in `Authorization: Basic`, kubeconfigs or JSON blobs), URL encodings
 * (percent-encoded, `+` for spaces, lower-case escapes, form encoding), and lower/upper-case hex.
 * Tools re-encode secrets constantly, so hiding only the exact value is not enough.
 *
 * Returns `[]` for values shorter than {@link MIN_SECRET_LENGTH}; derived forms shorter than
 * {@link MIN_FORM_LENGTH} are dropped. De-duplicated, longest first.
 */
export function secretForms(value: string): string[] {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) return [];
  const bytes = Buffer.from(value, 'utf8');
  const b64 = bytes.toString('base64');
  const b64Unpadded = b64.replace(/=+$/, '');
  const inner = base64InnerRuns(bytes);
  const hex = bytes.toString('hex');
  const derived = [
    b64,
    b64Unpadded,
    toBase64Url(b64),
    toBase64Url(b64Unpadded),
    ...inner,
    ...inner.map(toBase64Url),
    ...urlForms(value),
    hex,
    hex.toUpperCase(),
  ].filter((f) => f.length >= MIN_FORM_LENGTH);
  return [...new Set([value, ...derived])].sort(byLengthDesc);
}

/** Copy of a plain object or array graph; a `Map` from originals to copies keeps cycles intact. */
type Seen = Map<object, unknown>;

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Redacts `text[0, horizon)` and returns what to emit plus how many characters past `horizon` are
 * already covered by a redaction whose marker has been emitted.
 *
 * Semantics (shared by whole-text and streaming redaction, so both give identical output): every
 * occurrence of every form is found, including overlapping ones (the longest form at each start);
 * each maximal group of overlapping occurrences becomes one marker. Hiding the union of all
 * occurrences leaves no fragment of a secret behind even when different secrets' forms overlap.
 *
 * `carry` > 0 means text[0, carry) continues a group whose marker was already emitted. Only
 * occurrences starting before `horizon` are considered; the caller guarantees they are complete.
 */
function scan(re: RegExp, marker: string, text: string, carry: number, horizon: number): { out: string; carry: number } {
  let out = '';
  let covered = carry; // text[0, covered) is emitted or swallowed by the current group
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null && m.index < horizon; m = re.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    if (start < covered) {
      if (end > covered) covered = end;
    } else {
      out += text.slice(covered, start) + marker;
      covered = end;
    }
    re.lastIndex = start + 1; // also find occurrences that start inside this one
  }
  if (covered >= horizon) return { out, carry: covered - horizon };
  return { out: out + text.slice(covered, horizon), carry: 0 };
}

let patternOf: (r: Redactor) => RegExp | undefined;

/**
 * Hides every form of a run's secrets from text before it reaches transcripts, status updates,
 * artifacts, Temporal history or error messages. Build one per run: the combined RegExp (escaped
 * alternation, longest form first so the longest match wins at each position) is compiled once.
 */
export class Redactor {
  /** All forms of all secrets, longest first; exposed so callers can assert on or log their count. */
  readonly forms: readonly string[];
  /** Stream redaction must hold back `maxFormLength - 1` characters to catch a split secret. */
  readonly maxFormLength: number;
  readonly marker: string;
  readonly #pattern: RegExp | undefined;

  static {
    patternOf = (r) => r.#pattern;
  }

  /**
   * Accepts `undefined`/`null` entries so optional environment values can be passed straight in;
   * they and values shorter than {@link MIN_SECRET_LENGTH} are ignored.
   */
  constructor(secrets: Iterable<string | null | undefined>, marker: string = DEFAULT_MARKER) {
    const forms = new Set<string>();
    for (const s of secrets) if (typeof s === 'string') for (const f of secretForms(s)) forms.add(f);
    this.forms = [...forms].sort(byLengthDesc);
    this.maxFormLength = this.forms[0]?.length ?? 0;
    this.marker = marker;
    this.#pattern = this.forms.length ? new RegExp(this.forms.map(escapeRegExp).join('|'), 'g') : undefined;
  }

  /** Lets hot paths skip redaction work (and stream buffering) when a run has no secrets. */
  get empty(): boolean {
    return this.#pattern === undefined;
  }

  /** Redacts a complete text (command lines, error messages, status fields). */
  redact(text: string): string {
    const re = this.#pattern;
    if (!re || text.length < 1) return text;
    return scan(re, this.marker, text, 0, text.length).out;
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
 * even when a secret is split across chunks (or a multi-byte character across buffers). Holds back
 * only the last `maxFormLength - 1` characters, so memory and work stay linear in the output size;
 * the concatenation of everything `push` and `flush` return equals `redactor.redact(whole output)`.
 */
export class StreamRedactor {
  readonly #redactor: Redactor;
  readonly #pattern: RegExp | undefined;
  #decoder = new StringDecoder('utf8');
  #pending = '';
  #carry = 0;

  constructor(redactor: Redactor) {
    this.#redactor = redactor;
    this.#pattern = patternOf(redactor);
  }

  /**
   * Returns the redacted text that is safe to emit now. Buffers are UTF-8 decoded incrementally;
   * a string chunk first flushes any incomplete byte sequence left by a previous buffer.
   */
  push(chunk: Buffer | Uint8Array | string): string {
    const text = typeof chunk === 'string' ? this.#decoder.end() + chunk : this.#decoder.write(chunk);
    const re = this.#pattern;
    if (!re) return text;
    const pending = this.#pending + text;
    // Occurrences starting before `horizon` fit entirely in `pending`, so they are final.
    let horizon = pending.length - (this.#redactor.maxFormLength - 1);
    if (horizon <= 0) {
      this.#pending = pending;
      return '';
    }
    // Never hand out half a surrogate pair: writers would turn it into U+FFFD.
    const c = pending.charCodeAt(horizon - 1);
    if (c >= 0xd800 && c <= 0xdbff) horizon--;
    const { out, carry } = scan(re, this.#redactor.marker, pending, this.#carry, horizon);
    this.#pending = pending.slice(horizon);
    this.#carry = carry;
    return out;
  }

  /** Emits everything still held back; call once when the command's output ends. */
  flush(): string {
    const pending = this.#pending + this.#decoder.end();
    const re = this.#pattern;
    const { out } = re ? scan(re, this.#redactor.marker, pending, this.#carry, pending.length) : { out: pending };
    this.#pending = '';
    this.#carry = 0;
    return out;
  }
}
