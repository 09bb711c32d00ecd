import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { Phase, RecordRunOutputRequestSchema } from '@ameide/contracts';
import type { WorkflowServiceClient } from '@ameide/sdk';

/** One chunk as sent: `data` is the transcript's text at byte `offset` (or a marker for bytes skipped there). */
export interface OutputChunk {
  offset: number;
  data: string;
}

export interface OutputSenderOptions {
  /** Sends one chunk; rejects when the service did not take it. */
  send(chunk: OutputChunk): Promise<void>;
  /** How often buffered output is sent (default 1 s). */
  intervalMs?: number;
  /** The most bytes of output one chunk carries (default 64 KiB). */
  maxChunkBytes?: number;
  /** The most unsent bytes kept; beyond it the oldest are dropped and a marker says how many (default 256 KiB). */
  maxBufferBytes?: number;
  /** Failures after which nothing more is sent (the service refuses for good or does not know the call). */
  isPermanent?(err: unknown): boolean;
  /** Failures after which that chunk is dropped and the rest still sent (the service refuses this chunk). */
  isRefusal?(err: unknown): boolean;
}

/** The marker sent where output was dropped. */
export const skippedMarker = (bytes: number) => `[… ${bytes} bytes skipped …]\n`;

/** How many bytes at the end of `b` are the start of a UTF-8 sequence that `b` does not finish. */
function incompleteUtf8Tail(b: Buffer): number {
  for (let i = 1; i <= Math.min(3, b.length); i++) {
    const c = b[b.length - i]!;
    if ((c & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > i ? i : 0;
  }
  return 0;
}

/** Text of transcript bytes as the API carries it: invalid UTF-8 as U+FFFD, NUL as ␀ (U+2400). */
export const outputText = (b: Buffer) => b.toString('utf8').replace(/\0/g, '\u2400');

/**
 * Sends a command's output to the service while it runs, without ever holding the command up: the
 * output is buffered (at most `maxBufferBytes`) and sent at most every `intervalMs`, one request at a
 * time, in order; a chunk the service did not answer is sent again. When the service is slow or away
 * for longer than the buffer lasts, the oldest unsent output is dropped and one marker chunk
 * (`[… N bytes skipped …]`, at the offset of the first byte dropped) takes its place; the transcript
 * itself keeps everything. Chunks end on whole UTF-8 characters, so each chunk's text is
 * exactly the transcript's bytes at its offset (for valid UTF-8 without NUL bytes).
 */
export class OutputSender {
  private readonly intervalMs: number;
  private readonly maxChunkBytes: number;
  private readonly maxBufferBytes: number;
  private buf: Buffer[] = [];
  private bufLen = 0;
  /** Transcript offset of the first buffered byte (set by the first push). */
  private bufStart: number | undefined;
  /** Bytes dropped unsent since the last marker, from `skipFrom` up to `bufStart`. */
  private skipped = 0;
  private skipFrom = 0;
  private lastSentNewline = true;
  /**
   * Length of the first buffered chunk when it was sent and not answered: sent again exactly as it
   * was (the service may have stored it; a chunk at the same offset is stored once).
   */
  private resend = 0;
  private draining: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private stopped = false;
  /** What happened, for tests and logs. */
  readonly stats = { chunks: 0, bytes: 0, skippedBytes: 0, failures: 0 };

  constructor(private readonly opts: OutputSenderOptions) {
    this.intervalMs = opts.intervalMs ?? 1000;
    this.maxChunkBytes = opts.maxChunkBytes ?? 64 * 1024;
    this.maxBufferBytes = Math.max(opts.maxBufferBytes ?? 256 * 1024, 4);
    this.timer = setInterval(() => this.kick(), this.intervalMs);
    this.timer.unref();
  }

  /** Output written to the transcript at `offset` (contiguous with what was pushed before). Never blocks, never throws. */
  push(chunk: Buffer, offset: number): void {
    if (this.stopped || this.closed || chunk.length === 0) return;
    if (this.bufStart === undefined) this.bufStart = offset;
    this.buf.push(chunk);
    this.bufLen += chunk.length;
    if (this.bufLen > this.maxBufferBytes) this.dropOldest(this.bufLen - this.maxBufferBytes);
  }

  /**
   * Stops the timer and sends what is left; resolves once it is sent, or after `timeoutMs` (then what
   * is still unsent is given up).
   */
  async close(timeoutMs = 3000): Promise<void> {
    if (this.closed) return this.draining;
    this.closed = true;
    clearInterval(this.timer);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    const flushed = (async () => {
      await this.draining;
      await this.kick();
    })();
    try {
      await Promise.race([flushed.catch(() => undefined), late]);
    } finally {
      clearTimeout(timer);
      this.stopped = true;
    }
  }

  /** Drops the oldest `n` unsent bytes (and the rest of a character cut there), to be announced by a marker. */
  private dropOldest(n: number): void {
    if (this.skipped === 0) this.skipFrom = this.bufStart!;
    // A chunk waiting to be sent again goes whole or not at all.
    let left = Math.max(n, this.resend);
    this.resend = 0;
    let extra = 0;
    // Whole buffers where possible: no copying while the service is away and output keeps coming.
    while (this.buf.length && (left > 0 || (extra < 3 && (this.buf[0]![0]! & 0xc0) === 0x80))) {
      const first = this.buf[0]!;
      const k = left > 0 ? Math.min(left, first.length) : 1; // then: continuation bytes of a character cut
      if (left > 0) left -= k;
      else extra++;
      if (k === first.length) this.buf.shift();
      else this.buf[0] = first.subarray(k);
      this.bufLen -= k;
      this.bufStart! += k;
      this.skipped += k;
      this.stats.skippedBytes += k;
    }
  }

  /** The first `n` buffered bytes (all of them for 0), without removing them. */
  private take(n: number): Buffer {
    if (this.buf.length > 1) this.buf = [Buffer.concat(this.buf)];
    const all = this.buf[0] ?? Buffer.alloc(0);
    return n ? all.subarray(0, n) : all;
  }

  /** Removes the first `n` buffered bytes. */
  private consume(n: number): void {
    const all = this.take(0);
    this.buf = n < all.length ? [all.subarray(n)] : [];
    this.bufLen -= n;
    this.bufStart! += n;
  }

  private kick(): Promise<void> {
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
    return this.draining;
  }

  /** Sends the marker (when output was dropped), then the buffered output, chunk by chunk; stops at a failure. */
  private async drain(): Promise<void> {
    while (!this.stopped) {
      if (this.skipped > 0) {
        const marker = { offset: this.skipFrom, data: (this.lastSentNewline ? '' : '\n') + skippedMarker(this.skipped) };
        const n = this.skipped;
        const r = await this.sendOne(marker);
        if (r === 'failed') return;
        // Output dropped while the marker was in flight extends the next marker.
        this.skipped -= n;
        this.skipFrom += n;
        if (r === 'sent') this.lastSentNewline = true;
        continue;
      }
      if (this.bufLen === 0) return;
      const again = this.resend > 0;
      let n = again ? this.resend : Math.min(this.bufLen, this.maxChunkBytes);
      const head = this.take(n);
      // Only the final chunk may end inside a character (its end never comes).
      if (!again && (!this.closed || n < this.bufLen)) n -= incompleteUtf8Tail(head);
      if (n <= 0) return;
      const bytes = Buffer.from(head.subarray(0, n));
      const offset = this.bufStart!;
      this.consume(n);
      this.resend = 0;
      const r = await this.sendOne({ offset, data: outputText(bytes) });
      if (r === 'failed' && this.skipped === 0 && !this.stopped) {
        // The service is slow or away: sent again next time, unless newer output pushes it out.
        this.buf.unshift(bytes);
        this.bufLen += n;
        this.bufStart = offset;
        this.resend = n;
        if (this.bufLen > this.maxBufferBytes) this.dropOldest(this.bufLen - this.maxBufferBytes);
        return;
      }
      if (r !== 'sent') {
        // Refused, or output after it was dropped meanwhile: skipped output now, announced before what follows.
        this.skipFrom = offset;
        this.skipped += n;
        this.stats.skippedBytes += n;
        return;
      }
      this.lastSentNewline = bytes[n - 1] === 0x0a;
      this.stats.bytes += n;
    }
  }

  /** One request: a permanent failure stops the sender; a refusal is of this chunk only. */
  private async sendOne(chunk: OutputChunk): Promise<'sent' | 'failed' | 'refused'> {
    try {
      await this.opts.send(chunk);
      this.stats.chunks++;
      return 'sent';
    } catch (err) {
      this.stats.failures++;
      if (this.opts.isPermanent?.(err)) this.stopped = true;
      return this.opts.isRefusal?.(err) ? 'refused' : 'failed';
    }
  }
}

/** Refusals that hold for every chunk of the run: stop sending. */
const PERMANENT = new Set([Code.Unimplemented, Code.PermissionDenied, Code.Unauthenticated, Code.NotFound]);

/**
 * An OutputSender of one command phase of a run, to the service's RecordRunOutput (each request given
 * `requestTimeoutMs`).
 */
export function runOutputSender(
  api: WorkflowServiceClient,
  run: { runId: string },
  phase: 'install' | 'agent' | 'test',
  opts: Omit<OutputSenderOptions, 'send'> & { requestTimeoutMs?: number } = {},
): OutputSender {
  const p = { install: Phase.INSTALL, agent: Phase.AGENT, test: Phase.TEST }[phase];
  return new OutputSender({
    isPermanent: (err) => PERMANENT.has(ConnectError.from(err).code),
    isRefusal: (err) => ConnectError.from(err).code === Code.InvalidArgument,
    ...opts,
    send: async (c) => {
      await api.recordRunOutput(create(RecordRunOutputRequestSchema, { runId: run.runId, phase: p, offset: BigInt(c.offset), data: c.data }), {
        timeoutMs: opts.requestTimeoutMs ?? 5000,
      });
    },
  });
}
