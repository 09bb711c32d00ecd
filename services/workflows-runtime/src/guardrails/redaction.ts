import { StringDecoder } from 'node:string_decoder';

/** Secrets shorter than this are not redacted: they would shred ordinary output. */
const MIN_SECRET_LENGTH = 4;
/** Derived forms (encodings, inner base64 runs) shorter than this are too likely to be ordinary text. */
const MIN_FORM_LENGTH = 6;

/**
 * The base64 characters that depend only on the secret's bytes when it sits at byte offset `o`
 * (0, 1 or 2 mod 3) inside longer data: the secret stays findable wherever it is embedded.
 */
function base64Runs(secret: Buffer, alphabet: 'base64' | 'base64url'): string[] {
  const out: string[] = [];
  for (let o = 0; o < 3; o++) {
    const encoded = Buffer.concat([Buffer.alloc(o), secret, Buffer.alloc(3)]).toString(alphabet);
    out.push(encoded.slice(Math.ceil((8 * o) / 6), Math.floor((8 * (o + secret.length)) / 6)));
  }
  // The secret encoded on its own, with padding, as most tools print it.
  out.push(secret.toString(alphabet));
  return out;
}

/** Every form of a secret that must not appear in output: exact, base64(url), URL-encoded, hex. */
export function secretForms(value: string): string[] {
  if (value.length < MIN_SECRET_LENGTH) return [];
  const bytes = Buffer.from(value);
  const derived = [
    ...base64Runs(bytes, 'base64'),
    ...base64Runs(bytes, 'base64url'),
    encodeURIComponent(value),
    encodeURIComponent(value).replace(/%20/g, '+'),
    bytes.toString('hex'),
    bytes.toString('hex').toUpperCase(),
  ].filter((f) => f.length >= MIN_FORM_LENGTH && f !== value);
  return [...new Set([value, ...derived])].sort((a, b) => b.length - a.length);
}

/** Replaces every form of the given secrets in text; built once per run (one combined RegExp). */
export class Redactor {
  readonly maxFormLength: number;
  private readonly pattern?: RegExp;

  constructor(
    secrets: string[],
    private readonly marker = '[REDACTED]',
  ) {
    const forms = [...new Set(secrets.flatMap(secretForms))].sort((a, b) => b.length - a.length);
    this.maxFormLength = forms[0]?.length ?? 0;
    if (forms.length) this.pattern = new RegExp(forms.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  }

  /** True when there is nothing to redact. */
  get empty(): boolean {
    return !this.pattern;
  }

  redact(text: string): string {
    return this.pattern ? text.replace(this.pattern, this.marker) : text;
  }

  /** A copy of `value` with every string inside (objects, arrays) redacted. */
  redactDeep<T>(value: T): T {
    if (typeof value === 'string') return this.redact(value) as T;
    if (Array.isArray(value)) return value.map((v) => this.redactDeep(v)) as T;
    if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.redactDeep(v)])) as T;
    }
    return value;
  }

  /** Finds matches in `text`; used by the stream redactor to cut safely. */
  matches(text: string): Array<[number, number]> {
    if (!this.pattern) return [];
    return [...text.matchAll(this.pattern)].map((m) => [m.index!, m.index! + m[0].length]);
  }
}

/**
 * Redacts output that arrives in chunks. A secret split across chunks is still caught: the last
 * (longest form − 1) characters are held back until more output or the end arrives.
 */
export class StreamRedactor {
  private pending = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly redactor: Redactor) {}

  push(chunk: Buffer | string): string {
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    if (this.redactor.empty) return this.take(this.pending.length);
    let cut = this.pending.length - (this.redactor.maxFormLength - 1);
    if (cut <= 0) return '';
    // A match that crosses the cut is complete (it lies within what we have): emit it whole.
    for (const [start, end] of this.redactor.matches(this.pending)) if (start < cut && end > cut) cut = end;
    return this.take(cut);
  }

  flush(): string {
    this.pending += this.decoder.end();
    return this.take(this.pending.length);
  }

  private take(n: number): string {
    const out = this.pending.slice(0, n);
    this.pending = this.pending.slice(n);
    return this.redactor.redact(out);
  }
}
