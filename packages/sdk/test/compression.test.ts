import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Code, ConnectError } from '@connectrpc/connect';
import { compressionBrotli, compressionGzip } from '@connectrpc/connect-node';
import { QUICK_COMPRESSIONS, SYNC_DECOMPRESS_MAX_BYTES } from '../src/compression.js';

const [gzip, brotli] = QUICK_COMPRESSIONS as [(typeof QUICK_COMPRESSIONS)[0], (typeof QUICK_COMPRESSIONS)[0]];
const cases = [
  { name: 'gzip', quick: gzip, connect: compressionGzip, deflate: (b: Buffer) => zlib.gzipSync(b) },
  { name: 'br', quick: brotli, connect: compressionBrotli, deflate: (b: Buffer) => zlib.brotliCompressSync(b) },
];

const failure = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error('expected the decompression to fail');
};

describe('the SDK decompresses answers as Connect does, small ones at once', () => {
  it.each(cases)('$name: keeps its name and inflates small and large answers to the same bytes', async ({ name, quick, deflate }) => {
    expect(quick.name).toBe(name);
    const text = Buffer.from(JSON.stringify({ runs: Array.from({ length: 40 }, (_, i) => ({ id: `run-${i}`, phase: 'PHASE_TEST' })) }));
    const small = deflate(text);
    expect(small.length).toBeLessThanOrEqual(SYNC_DECOMPRESS_MAX_BYTES);
    expect(Buffer.from(await quick.decompress(small, 1 << 20))).toEqual(text);
    // Random bytes do not compress: beyond the limit, so the asynchronous way.
    const noise = randomBytes(SYNC_DECOMPRESS_MAX_BYTES + 1024);
    const large = deflate(noise);
    expect(large.length).toBeGreaterThan(SYNC_DECOMPRESS_MAX_BYTES);
    expect(Buffer.from(await quick.decompress(large, 1 << 20))).toEqual(noise);
    expect((await quick.decompress(new Uint8Array(0), 1 << 20)).length).toBe(0);
  });

  it.each(cases)('$name: refuses what inflates beyond readMaxBytes with resource_exhausted, as Connect does', async ({ quick, connect, deflate }) => {
    const bomb = deflate(Buffer.alloc(200_000));
    const ours = await failure(quick.decompress(bomb, 100_000));
    const theirs = await failure(connect.decompress(bomb, 100_000));
    expect(ours.code).toBe(Code.ResourceExhausted);
    expect(ours.rawMessage).toBe(theirs.rawMessage);
  });

  it.each(cases)('$name: refuses data that is not compressed with the same code as Connect', async ({ quick, connect }) => {
    const garbage = Buffer.from('this is not compressed at all, not even a little');
    const ours = await failure(quick.decompress(garbage, 1 << 20));
    const theirs = await failure(connect.decompress(garbage, 1 << 20));
    expect(ours.code).toBe(theirs.code);
    expect(ours.rawMessage).toBe(theirs.rawMessage);
  });
});
