import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Code, ConnectError } from '@connectrpc/connect';
import { runCommand } from '../../src/activities/exec.js';
import { OutputSender, skippedMarker, type OutputChunk, type OutputSenderOptions } from '../../src/activities/output.js';
import { Redactor } from '../../src/guardrails/redact.js';

/** A fake service: records what it is sent; `hold` keeps answers back, `fail` makes calls fail. */
function fakeService() {
  const sent: OutputChunk[] = [];
  const calls: OutputChunk[] = [];
  let held: Array<() => void> = [];
  const s = {
    sent,
    calls,
    hold: false,
    fail: undefined as Error | undefined,
    release() {
      const h = held;
      held = [];
      for (const r of h) r();
    },
    send: async (c: OutputChunk) => {
      calls.push(c);
      if (s.fail) throw s.fail;
      if (s.hold) await new Promise<void>((r) => held.push(r));
      sent.push(c);
    },
  };
  return s;
}

/** Pushes strings as a command writes its transcript: each at the offset after the one before. */
function writer(sender: OutputSender, start = 0) {
  let offset = start;
  return (text: string | Buffer) => {
    const b = typeof text === 'string' ? Buffer.from(text) : text;
    sender.push(b, offset);
    offset += b.length;
  };
}

const sender = (svc: ReturnType<typeof fakeService>, opts: Partial<OutputSenderOptions> = {}) =>
  new OutputSender({
    send: svc.send,
    isPermanent: (e) => ConnectError.from(e).code === Code.Unimplemented,
    isRefusal: (e) => ConnectError.from(e).code === Code.InvalidArgument,
    ...opts,
  });

/** What the service got, as the reader sees it: chunk texts in offset order. */
const text = (chunks: OutputChunk[]) =>
  [...chunks]
    .sort((a, b) => a.offset - b.offset)
    .map((c) => c.data)
    .join('');

describe('the run output sender', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sends what was written at most once a second, in order, each chunk at its transcript offset', async () => {
    const svc = fakeService();
    const s = sender(svc);
    const write = writer(s, 100);
    write('$ agent\n');
    write('line 1\n');
    await vi.advanceTimersByTimeAsync(500);
    expect(svc.calls).toEqual([]);
    write('line 2\n');
    await vi.advanceTimersByTimeAsync(500);
    expect(svc.sent).toEqual([{ offset: 100, data: '$ agent\nline 1\nline 2\n' }]);
    write('line 3\n');
    await vi.advanceTimersByTimeAsync(1000);
    expect(svc.sent.at(-1)).toEqual({ offset: 122, data: 'line 3\n' });
    write('[exit 0]\n');
    // The end goes out at once, without waiting for the next second.
    await s.close();
    expect(svc.sent.map((c) => c.offset)).toEqual([100, 122, 129]);
    expect(text(svc.sent)).toBe('$ agent\nline 1\nline 2\nline 3\n[exit 0]\n');
  });

  it('splits a large backlog into chunks of at most maxChunkBytes, never inside a character', async () => {
    const svc = fakeService();
    const s = sender(svc, { maxChunkBytes: 10 });
    const write = writer(s);
    write('ééééééééé'); // 18 bytes: 5 characters fit in a chunk of 10 bytes
    write(Buffer.from('€').subarray(0, 1)); // the first byte of a character whose rest comes later
    await vi.advanceTimersByTimeAsync(1000);
    expect(svc.sent).toEqual([
      { offset: 0, data: 'ééééé' },
      { offset: 10, data: 'éééé' },
    ]);
    write(Buffer.from('€').subarray(1));
    await s.close();
    expect(svc.sent.at(-1)).toEqual({ offset: 18, data: '€' });
  });

  it('keeps at most maxBufferBytes while the service is slow: the oldest go, a marker says how many, the newest follow in order', async () => {
    const svc = fakeService();
    const s = sender(svc, { maxBufferBytes: 100, maxChunkBytes: 1000 });
    const write = writer(s);
    write('first\n');
    svc.hold = true;
    await vi.advanceTimersByTimeAsync(1000); // "first" is in flight; the service does not answer
    const lines = Array.from({ length: 50 }, (_, i) => `line ${String(i).padStart(2, '0')}\n`); // 8 bytes each
    for (const l of lines) write(l);
    expect(s.stats.skippedBytes).toBe(400 - 100);
    await vi.advanceTimersByTimeAsync(3000); // ticks while the request hangs send nothing more
    expect(svc.calls).toHaveLength(1);
    svc.hold = false;
    svc.release();
    await vi.advanceTimersByTimeAsync(0);
    await s.close();
    // "first", then the marker where the dropped output began, then the newest 100 bytes.
    expect(svc.sent[0]).toEqual({ offset: 0, data: 'first\n' });
    expect(svc.sent[1]).toEqual({ offset: 6, data: skippedMarker(300) });
    expect(svc.sent[2]).toEqual({ offset: 306, data: lines.join('').slice(300) });
    expect(svc.sent[2]!.data).toHaveLength(100);
    expect(svc.sent[2]!.data.endsWith('line 49\n')).toBe(true);
    expect(svc.sent).toHaveLength(3);
  });

  it('while the service is away: sends the same chunk again, then drops the oldest once the buffer is full', async () => {
    const svc = fakeService();
    const s = sender(svc, { maxBufferBytes: 64 });
    const write = writer(s);
    svc.fail = new ConnectError('connection refused', Code.Unavailable);
    write('a'.repeat(20) + '\n');
    await vi.advanceTimersByTimeAsync(1000);
    write('b'.repeat(20) + '\n');
    await vi.advanceTimersByTimeAsync(1000);
    // The unanswered chunk is sent again exactly (the service may have stored it: stored once by offset).
    expect(svc.calls.map((c) => [c.offset, c.data.length])).toEqual([
      [0, 21],
      [0, 21],
    ]);
    write('c'.repeat(20) + '\n');
    write('d'.repeat(20) + '\n'); // 84 bytes buffered: the oldest chunk (21) goes whole
    svc.fail = undefined;
    await s.close();
    expect(svc.sent).toEqual([
      { offset: 0, data: skippedMarker(21) },
      { offset: 21, data: 'b'.repeat(20) + '\n' + 'c'.repeat(20) + '\n' + 'd'.repeat(20) + '\n' },
    ]);
  });

  it('starts a marker on a line of its own, and never drops half a character', async () => {
    const svc = fakeService();
    const s = sender(svc, { maxBufferBytes: 10 });
    const write = writer(s);
    write('no newline');
    await vi.advanceTimersByTimeAsync(1000);
    svc.hold = true;
    write('x');
    await vi.advanceTimersByTimeAsync(1000); // "x" hangs
    write('éééééé'); // 12 bytes, 2 over the limit: one character goes
    svc.hold = false;
    svc.release();
    await s.close();
    expect(svc.sent).toEqual([
      { offset: 0, data: 'no newline' },
      { offset: 10, data: 'x' },
      { offset: 11, data: '\n' + skippedMarker(2) },
      { offset: 13, data: 'ééééé' },
    ]);
  });

  it('stops for good when the service does not know the call, and close gives up after its timeout', async () => {
    const svc = fakeService();
    const s = sender(svc);
    const write = writer(s);
    svc.fail = new ConnectError('unknown method', Code.Unimplemented);
    write('one\n');
    await vi.advanceTimersByTimeAsync(1000);
    svc.fail = undefined;
    write('two\n');
    await vi.advanceTimersByTimeAsync(5000);
    await s.close();
    expect(svc.calls).toHaveLength(1);
    expect(svc.sent).toEqual([]);

    const slow = fakeService();
    const t = sender(slow);
    writer(t)('late\n');
    slow.hold = true;
    const closing = t.close(2000);
    await vi.advanceTimersByTimeAsync(2000);
    await closing; // resolved though the service never answered
    expect(slow.sent).toEqual([]);
  });

  it('drops a chunk the service refuses and says so, then goes on', async () => {
    const svc = fakeService();
    let refuse = true;
    const s = sender(svc, {
      send: async (c) => {
        if (refuse && c.data.startsWith('bad')) {
          refuse = false;
          throw new ConnectError('data: too large', Code.InvalidArgument);
        }
        await svc.send(c);
      },
    });
    const write = writer(s);
    write('bad\n');
    await vi.advanceTimersByTimeAsync(1000);
    write('good\n');
    await s.close();
    expect(svc.sent).toEqual([
      { offset: 0, data: skippedMarker(4) },
      { offset: 4, data: 'good\n' },
    ]);
  });

  it('sends NUL as ␀ and invalid UTF-8 as U+FFFD (the transcript keeps the bytes)', async () => {
    const svc = fakeService();
    const s = sender(svc);
    writer(s)(Buffer.from([0x61, 0x00, 0x62, 0xff, 0x0a]));
    await s.close();
    expect(svc.sent).toEqual([{ offset: 0, data: 'a\u2400b\ufffd\n' }]);
  });
});

describe('the run output of a real command', () => {
  it('is the redacted transcript, byte for byte at each offset, and never carries a secret: whole, split across chunks or encoded', async () => {
    const secret = 'sk_live_7hQ2pZ9wX4vB1nM8';
    const dir = mkdtempSync(join(tmpdir(), 'output-'));
    const transcriptPath = join(dir, 'agent.log');
    const sent: OutputChunk[] = [];
    // Sends every 100 ms: the secret's first half waits 500 ms for its second.
    const s = new OutputSender({ send: async (c) => void sent.push(c), intervalMs: 100 });
    const command = [
      'echo start',
      'printf %s "$T" | head -c 6',
      'sleep 0.5',
      'printf "%s\\n" "$T" | tail -c +7',
      'echo "plain $T"',
      'printf %s "$T" | base64',
      'echo "é done"',
    ].join('; ');
    const r = await runCommand({
      command,
      cwd: dir,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', T: secret },
      timeoutMs: 10_000,
      transcriptPath,
      redactor: new Redactor([secret]),
      onOutput: (chunk, offset) => s.push(chunk, offset),
    });
    await s.close();
    expect(r.exitCode).toBe(0);
    expect(sent.length).toBeGreaterThan(1);
    const transcript = readFileSync(transcriptPath);
    for (const c of sent) expect(Buffer.from(c.data).equals(transcript.subarray(c.offset, c.offset + Buffer.byteLength(c.data)))).toBe(true);
    const all = sent.map((c) => c.data).join('');
    expect(Buffer.from(all).equals(transcript)).toBe(true);
    expect(all).toContain('plain [REDACTED]');
    for (const leak of [secret, secret.slice(0, 6), Buffer.from(secret).toString('base64')]) {
      expect(all).not.toContain(leak);
      for (const c of sent) expect(c.data).not.toContain(leak);
    }
  });
});
