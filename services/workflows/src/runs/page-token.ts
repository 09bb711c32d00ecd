import type { RunListKey } from '@ameide/db';
import { PAGED_LISTS, decodePageToken, encodePageToken } from '../page-token.js';

/** What a ListWorkflowRuns page token is valid for: the tenant and the filters of the list. */
export interface RunListFilter {
  tenantId: string;
  statuses: string[];
  workItemId?: string;
  definitionId?: string;
}

/** The filters as the token's digest sees them (statuses in any order are the same filter). */
function canonical(f: RunListFilter): unknown {
  return [f.tenantId, [...new Set(f.statuses)].sort(), f.workItemId ?? '', f.definitionId ?? ''];
}

/** The token of the page after the run `last` (see ../page-token.ts). */
export function encodeRunPageToken(last: RunListKey, filter: RunListFilter): string {
  return encodePageToken(PAGED_LISTS.runs, [last.createdAt, last.id], canonical(filter));
}

/** The list key a page token continues after; refuses (naming page_token) one that is malformed or was returned for other filters. */
export function decodeRunPageToken(token: string, filter: RunListFilter): RunListKey {
  const [createdAt, id] = decodePageToken(PAGED_LISTS.runs, token, canonical(filter)) as [string, string];
  return { createdAt, id };
}
