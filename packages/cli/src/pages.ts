/** The most entries one list call may ask for (the service's limit of page_size). */
const MAX_PAGE_SIZE = 1000;

/** One page of a list RPC: its entries and the token of the next page ('' after the last). */
export interface ListPage<T> {
  items: T[];
  nextPageToken: string;
}

/**
 * Up to `limit` entries of a list, a page at a time, following next_page_token. Without a limit: one
 * page of the service's default size, or with `all` every page (for lists small by nature).
 */
export async function listPages<T>(limit: number | undefined, page: (pageSize: number, pageToken: string) => Promise<ListPage<T>>, all = false): Promise<T[]> {
  const out: T[] = [];
  let pageToken = '';
  do {
    const res = await page(limit ? Math.min(limit - out.length, MAX_PAGE_SIZE) : 0, pageToken);
    out.push(...res.items);
    pageToken = res.nextPageToken;
  } while (pageToken && (limit ? out.length < limit : all));
  return limit ? out.slice(0, limit) : out;
}
