import { createHash } from 'node:crypto';
import { isUuid, type RunListKey } from '@ameide/db';
import { InvalidFieldError } from '../errors.js';

/** What a ListWorkflowRuns page token is valid for: the tenant and the filters of the list. */
export interface RunListFilter {
  tenantId: string;
  statuses: string[];
  workItemId?: string;
  definitionId?: string;
}

const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** A short digest of the filters (statuses in any order are the same filter). */
function filterDigest(f: RunListFilter): string {
  const canonical = JSON.stringify([f.tenantId, [...new Set(f.statuses)].sort(), f.workItemId ?? '', f.definitionId ?? '']);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}

/** The token of the page after the run `last`: base64url of its list key and the filters' digest. */
export function encodeRunPageToken(last: RunListKey, filter: RunListFilter): string {
  return Buffer.from(JSON.stringify({ t: last.createdAt, i: last.id, f: filterDigest(filter) })).toString('base64url');
}

/** The list key a page token continues after; refuses (naming page_token) one that is malformed or was returned for other filters. */
export function decodeRunPageToken(token: string, filter: RunListFilter): RunListKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const p = parsed as { t?: unknown; i?: unknown; f?: unknown } | undefined;
  if (!p || typeof p.t !== 'string' || !TIME_RE.test(p.t) || typeof p.i !== 'string' || !isUuid(p.i) || typeof p.f !== 'string')
    throw new InvalidFieldError('page_token', 'is not a token ListWorkflowRuns returned; start again without it');
  if (p.f !== filterDigest(filter))
    throw new InvalidFieldError(
      'page_token',
      'was returned for other filters (statuses, work_item_id, definition): repeat the filters it came with, or start again without it',
    );
  return { createdAt: p.t, id: p.i };
}
