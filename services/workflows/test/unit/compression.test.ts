import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { COMPRESSIONS, SYNC_COMPRESS_MAX_BYTES } from '../../src/server.js';

const inflate: Record<string, (b: Uint8Array) => Buffer> = { gzip: zlib.gunzipSync, br: zlib.brotliDecompressSync };

describe("the service's compressions", () => {
  it.each(COMPRESSIONS.map((c) => ({ name: c.name, c })))('$name: answers small and large alike, as standard data', async ({ name, c }) => {
    const text = Buffer.from(JSON.stringify({ definitions: Array.from({ length: 30 }, (_, i) => ({ name: `d-${i}`, repoUrl: 'https://example.com/r.git' })) }));
    const small = await c.compress(text);
    expect(small.length).toBeLessThan(text.length / 2);
    expect(inflate[name]!(small)).toEqual(text);
    // Beyond the limit, compressed on the thread pool.
    const big = Buffer.concat([randomBytes(SYNC_COMPRESS_MAX_BYTES), text]);
    expect(inflate[name]!(await c.compress(big))).toEqual(big);
  });
});
