import { createHash } from 'node:crypto';
import { isUuid } from '@ameide/db';
import { InvalidFieldError } from './errors.js';

/**
 * Page tokens of every list RPC: base64url JSON of `[list code, filter digest, ...key]`, the key being
 * the list order's key of the page's last row (a keyset: the next page starts after it, so rows
 * inserted between pages neither repeat nor hide the others). A token is valid only for the list
 * (RPC) and the filters (tenant included) it was returned for; anything else is refused with
 * InvalidArgument naming `page_token`. Tokens stay small: the API holds page_token to 256 bytes.
 */

/** One part of a list key: a time (ISO 8601 to the microsecond, UTC), a UUID, other text, a number, or nothing. */
export type KeyPart = string | number | null;
/** What a key part must look like; a `?` allows null. */
export type KeyKind = 'time' | 'time?' | 'uuid' | 'uuid?' | 'text' | 'int';

/** A list that pages: its RPC (for messages), a short code (in tokens), the kinds of its key and the names of its filters. */
export interface PagedList {
  rpc: string;
  code: string;
  key: readonly KeyKind[];
  /** The request fields that select, for the message refusing a token of other filters ('' when only the tenant does). */
  filters: string;
}

function list(rpc: string, code: string, key: KeyKind[], filters: string): PagedList {
  return { rpc, code, key, filters };
}

/** Every list RPC that pages with these tokens. */
export const PAGED_LISTS = {
  runs: list('ListWorkflowRuns', 'r', ['time', 'uuid'], 'statuses, work_item_id, definition'),
  definitions: list('ListDefinitions', 'd', ['text', 'time?', 'uuid'], 'show_deleted'),
  plans: list('ListPlans', 'p', ['time', 'uuid'], 'definition, work_item_id'),
  pullRequests: list('ListPullRequests', 'pr', ['time', 'uuid'], 'work_item_id, state'),
  previews: list('ListPreviews', 'pv', ['time', 'uuid'], 'work_item_id, run_id, state'),
  workItems: list('ListWorkItems', 'wi', ['time', 'text'], 'state, timebox_id, goal_id, profile, ready'),
  profiles: list('ListProfiles', 'pf', ['text'], ''),
  evidence: list('ListEvidence', 'ev', ['uuid?', 'uuid?'], 'run_id, work_item_id, timebox_id, goal_id, artifact'),
  impediments: list('ListImpediments', 'im', ['time', 'uuid'], 'state, work_item_id, run_id, assignee'),
  notifications: list('ListNotifications', 'n', ['int'], 'person, unread_only'),
  subscriptions: list('ListSubscriptions', 's', ['time', 'uuid'], 'person, work_item_id'),
  deliveries: list('ListDeliveries', 'dl', ['time', 'uuid'], 'state, channel, run_id'),
} as const satisfies Record<string, PagedList>;

const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

function fits(kind: KeyKind, v: unknown): boolean {
  if (v === null) return kind.endsWith('?');
  switch (kind.replace('?', '')) {
    case 'time':
      return typeof v === 'string' && TIME_RE.test(v);
    case 'uuid':
      return typeof v === 'string' && isUuid(v);
    case 'text':
      return typeof v === 'string';
    default:
      return typeof v === 'number' && Number.isSafeInteger(v);
  }
}

/** A short digest of the list and its filters (tenant included): any JSON value, compared as its canonical JSON. */
function filterDigest(l: PagedList, filter: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify([l.code, filter ?? null]))
    .digest('base64url')
    .slice(0, 12);
}

/** The token of the page after the row whose list key is `last`. */
export function encodePageToken(l: PagedList, last: readonly KeyPart[], filter: unknown): string {
  return Buffer.from(JSON.stringify([l.code, filterDigest(l, filter), ...last])).toString('base64url');
}

/**
 * The list key a page token continues after. Refuses (naming page_token, and the RPC the token
 * belongs to) one that is malformed, was returned by another list RPC, or for other filters.
 */
export function decodePageToken(l: PagedList, token: string, filter: unknown): KeyPart[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const malformed = () => new InvalidFieldError('page_token', `is not a token ${l.rpc} returned; start again without it`);
  if (!Array.isArray(parsed) || typeof parsed[0] !== 'string' || typeof parsed[1] !== 'string') throw malformed();
  const [code, digest, ...key] = parsed as [string, string, ...unknown[]];
  if (code !== l.code) {
    const other = Object.values(PAGED_LISTS).find((o) => o.code === code);
    if (!other) throw malformed();
    throw new InvalidFieldError('page_token', `was returned by ${other.rpc}, not ${l.rpc}; start again without it`);
  }
  if (key.length !== l.key.length || !key.every((v, i) => fits(l.key[i]!, v))) throw malformed();
  if (digest !== filterDigest(l, filter))
    throw new InvalidFieldError(
      'page_token',
      l.filters
        ? `was returned for other filters (${l.filters}): repeat the filters it came with, or start again without it`
        : `was returned for another list of ${l.rpc}; start again without it`,
    );
  return key as KeyPart[];
}

/** The list key the request's page_token continues after; undefined (the first page) when it has none. */
export function pageAfter(l: PagedList, token: string, filter: unknown): KeyPart[] | undefined {
  return token ? decodePageToken(l, token, filter) : undefined;
}

/**
 * One page of a list read with one row more than the page (which says whether there is a next one):
 * the page's rows, and the token of the next page ('' when this one is the last).
 */
export function pageOf<T>(l: PagedList, rows: T[], size: number, keyOf: (row: T) => readonly KeyPart[], filter: unknown): { page: T[]; nextPageToken: string } {
  const page = rows.slice(0, size);
  const last = page.at(-1);
  return { page, nextPageToken: rows.length > size && last !== undefined ? encodePageToken(l, keyOf(last), filter) : '' };
}
