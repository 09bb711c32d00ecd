import { describe, expect, it } from 'vitest';
import { listPages } from '../src/pages.js';

/** A list of `total` numbers served a page at a time (100 by default, at most `max`), recording each call. */
function server(total: number, max = 1000) {
  const calls: { pageSize: number; pageToken: string }[] = [];
  const page = (pageSize: number, pageToken: string) => {
    calls.push({ pageSize, pageToken });
    const from = pageToken ? Number(pageToken) : 0;
    const size = Math.min(pageSize || 100, max);
    const items = Array.from({ length: Math.max(Math.min(size, total - from), 0) }, (_, i) => from + i);
    return Promise.resolve({ items, nextPageToken: from + items.length < total ? String(from + items.length) : '' });
  };
  return { calls, page };
}

describe('listPages', () => {
  it('follows next_page_token up to the limit, asking for no more than the service allows', async () => {
    const s = server(2500);
    const got = await listPages(2200, s.page);
    expect(got).toEqual(Array.from({ length: 2200 }, (_, i) => i));
    expect(s.calls).toEqual([
      { pageSize: 1000, pageToken: '' },
      { pageSize: 1000, pageToken: '1000' },
      { pageSize: 200, pageToken: '2000' },
    ]);
  });

  it('stops at the last page, and keeps to the limit when a page holds fewer than asked', async () => {
    expect(await listPages(50, server(7).page)).toHaveLength(7);
    const small = server(30, 4);
    expect(await listPages(10, small.page)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(small.calls.map((c) => c.pageToken)).toEqual(['', '4', '8']);
  });

  it('without a limit reads one page of the default size, or with `all` every page', async () => {
    const one = server(250);
    expect(await listPages(undefined, one.page)).toHaveLength(100);
    expect(one.calls).toEqual([{ pageSize: 0, pageToken: '' }]);
    expect(await listPages(undefined, server(250).page, true)).toHaveLength(250);
  });
});
