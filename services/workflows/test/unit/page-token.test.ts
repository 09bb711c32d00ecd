import { describe, expect, it } from 'vitest';
import { InvalidFieldError } from '../../src/errors.js';
import { LIMITS } from '../../src/limits.js';
import { PAGED_LISTS, decodePageToken, encodePageToken, pageOf, type KeyPart } from '../../src/page-token.js';
import { decodeRunPageToken, encodeRunPageToken } from '../../src/runs/page-token.js';

const TIME = '2026-11-26T18:34:41.123456Z';
const ID = '0b8f4c52-3c1e-4d7a-9a51-1f6f8c2d9e10';

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidFieldError);
    return (err as Error).message;
  }
  throw new Error('not refused');
};

describe('page tokens', () => {
  it('give back the key they were made of, for the same list and filters only', () => {
    const t = encodePageToken(PAGED_LISTS.plans, [TIME, ID], ['acme', '', 'CALC-1']);
    expect(decodePageToken(PAGED_LISTS.plans, t, ['acme', '', 'CALC-1'])).toEqual([TIME, ID]);
    expect(refusal(() => decodePageToken(PAGED_LISTS.plans, t, ['globex', '', 'CALC-1']))).toBe(
      'page_token: was returned for other filters (definition, work_item_id): repeat the filters it came with, or start again without it',
    );
    expect(refusal(() => decodePageToken(PAGED_LISTS.impediments, t, ['acme', '', 'CALC-1']))).toBe(
      'page_token: was returned by ListPlans, not ListImpediments; start again without it',
    );
    expect(refusal(() => decodePageToken(PAGED_LISTS.profiles, encodePageToken(PAGED_LISTS.profiles, ['scrum'], ['acme']), ['globex']))).toBe(
      'page_token: was returned for another list of ListProfiles; start again without it',
    );
  });

  it.each([
    ['not base64url JSON', 'a+b/c='],
    ['a JSON object', Buffer.from('{"t":1}').toString('base64url')],
    ['a key of the wrong kinds', Buffer.from(JSON.stringify(['p', 'x', 'yesterday', ID])).toString('base64url')],
    ['a key too short', Buffer.from(JSON.stringify(['p', 'x', TIME])).toString('base64url')],
    ['an unknown list', Buffer.from(JSON.stringify(['zz', 'x', TIME, ID])).toString('base64url')],
  ])('refuse %s, naming page_token and the RPC', (_what, token) => {
    expect(refusal(() => decodePageToken(PAGED_LISTS.plans, token, []))).toBe('page_token: is not a token ListPlans returned; start again without it');
  });

  it('stay within the limit of page_token for the longest keys the lists have', () => {
    const max = LIMITS['ameide.workflows.v1.ListWorkflowRunsRequest.page_token']!.bytes!;
    const longest: Array<[keyof typeof PAGED_LISTS, KeyPart[]]> = [
      ['workItems', [TIME, 'W'.repeat(128)]],
      ['definitions', ['d'.repeat(63), TIME, ID]],
      ['profiles', ['p'.repeat(63)]],
      ['evidence', [ID, ID]],
      ['notifications', [Number.MAX_SAFE_INTEGER]],
    ];
    for (const [list, key] of longest) {
      const t = encodePageToken(PAGED_LISTS[list], key, ['t'.repeat(256), 'x'.repeat(256)]);
      expect(Buffer.byteLength(t), list).toBeLessThanOrEqual(max);
      expect(decodePageToken(PAGED_LISTS[list], t, ['t'.repeat(256), 'x'.repeat(256)])).toEqual(key);
    }
  });

  it('ListWorkflowRuns keeps its token: statuses in any order are the same filters', () => {
    const t = encodeRunPageToken({ createdAt: TIME, id: ID }, { tenantId: 'acme', statuses: ['B', 'A'] });
    expect(decodeRunPageToken(t, { tenantId: 'acme', statuses: ['A', 'B', 'A'] })).toEqual({ createdAt: TIME, id: ID });
    expect(refusal(() => decodeRunPageToken(t, { tenantId: 'acme', statuses: ['A'] }))).toMatch(
      /^page_token: was returned for other filters \(statuses, work_item_id, definition\)/,
    );
    expect(refusal(() => decodeRunPageToken('bm90LWEtdG9rZW4', { tenantId: 'acme', statuses: [] }))).toMatch(
      /^page_token: is not a token ListWorkflowRuns returned/,
    );
  });

  it('pageOf: a next token only when the rows went past the page', () => {
    const rows = [1, 2, 3].map((i) => ({ k: [i] }));
    expect(pageOf(PAGED_LISTS.notifications, rows.slice(0, 2), 2, (r) => r.k, []).nextPageToken).toBe('');
    const { page, nextPageToken } = pageOf(PAGED_LISTS.notifications, rows, 2, (r) => r.k, []);
    expect(page).toHaveLength(2);
    expect(decodePageToken(PAGED_LISTS.notifications, nextPageToken, [])).toEqual([2]);
  });
});
