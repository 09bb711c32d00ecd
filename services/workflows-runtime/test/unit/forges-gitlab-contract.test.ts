import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ForgeError, upsertPullRequest, type PullRequestRequest } from '../../src/forges/index.js';
import { FakeGitLab } from '../contract/gitlab-fake.js';

/**
 * Contract tests for the GitLab provider: the real provider code (gitbeaker's resource classes) against a local HTTP
 * server that plays GitLab's REST API v4, where every request is validated against JSON Schemas written from
 * GitLab's Merge requests and Users API documentation (see test/contract/gitlab-contract.ts for which sections),
 * including that `:id` is the URL-encoded project path. The fake's own responses are checked against the documented
 * response attributes. afterEach asserts there were no violations.
 */

const TOKEN = 'glpat-FAKEtoken0123456789ab';
const HEAD = 'ameide/wi-42';
const ENCODED = 'acme%2Fplatform%2Fwidgets';

let gl: FakeGitLab;

beforeEach(async () => {
  gl = await new FakeGitLab(TOKEN).start();
});

afterEach(async () => {
  const violations = [...gl.server.violations];
  await gl.close();
  expect(violations).toEqual([]);
});

function request(over: Partial<PullRequestRequest> = {}): PullRequestRequest {
  return {
    provider: 'gitlab',
    apiUrl: gl.apiUrl,
    repository: 'acme/platform/widgets',
    token: TOKEN,
    head: HEAD,
    base: 'main',
    title: 'WI-42: Add the widget exporter',
    body: 'Implements WI-42.',
    draft: true,
    labels: ['ameide', 'automated'],
    reviewers: ['alice', 'bob'],
    ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<ForgeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ForgeError);
  const fe = err as ForgeError;
  expect(fe.message).not.toContain(TOKEN);
  expect(String(fe.stack)).not.toContain(TOKEN);
  expect(JSON.stringify(fe)).not.toContain(TOKEN);
  return fe;
}

describe('GitLab contract: one merge request per piece of work', () => {
  it('opens a draft merge request with labels and reviewers on the first call', async () => {
    const out = await upsertPullRequest(request());
    expect(out).toMatchObject({
      provider: 'gitlab',
      number: 1,
      state: 'draft',
      action: 'opened',
      url: 'https://gitlab.example/acme/platform/widgets/-/merge_requests/1',
    });
    expect(out.headCommit).toMatch(/^[0-9a-f]{40}$/);
    expect(gl.mergeRequests.get(1)).toMatchObject({
      title: 'Draft: WI-42: Add the widget exporter',
      description: 'Implements WI-42.',
      source: HEAD,
      target: 'main',
    });
    expect(gl.mergeRequests.get(1)!.labels).toEqual(['ameide', 'automated']);
    expect(gl.mergeRequests.get(1)!.reviewerIds).toEqual([11, 12]);
    expect(gl.server.calls.map((c) => c.operation)).toEqual(['listProjectMergeRequests', 'listUsers', 'listUsers', 'createMergeRequest']);
    // :id is the URL-encoded project path.
    expect(gl.server.calls[0].path).toBe(`/api/v4/projects/${ENCODED}/merge_requests`);
    expect(gl.server.calls[0].query).toMatchObject({ source_branch: HEAD, state: 'all' });
    expect(gl.server.callsTo('createMergeRequest')[0].body).toEqual({
      source_branch: HEAD,
      target_branch: 'main',
      title: 'Draft: WI-42: Add the widget exporter',
      description: 'Implements WI-42.',
      labels: 'ameide,automated',
      reviewer_ids: [11, 12],
    });
  });

  it('updates the same merge request on the next call: same iid, new title and description, still a draft, nothing created', async () => {
    const first = await upsertPullRequest(request());
    const second = await upsertPullRequest(request({ title: 'WI-42: Add the widget exporter (rev 2)', body: 'Second run.' }));
    expect(second).toMatchObject({ number: first.number, action: 'updated', state: 'draft', url: first.url });
    expect(gl.mergeRequests.size).toBe(1);
    expect(gl.mergeRequests.get(first.number)).toMatchObject({ title: 'Draft: WI-42: Add the widget exporter (rev 2)', description: 'Second run.' });
    expect(gl.server.callsTo('createMergeRequest')).toHaveLength(1);
    // Labels and reviewers already on it are not sent again, and no user is looked up again.
    expect(gl.server.callsTo('updateMergeRequest')[0].body).toEqual({
      title: 'Draft: WI-42: Add the widget exporter (rev 2)',
      description: 'Second run.',
      target_branch: 'main',
    });
    expect(gl.server.callsTo('listUsers')).toHaveLength(2);
  });

  it('keeps a merge request a person marked ready out of draft', async () => {
    gl.seed({ source: HEAD, title: 'WI-42: ready' });
    const out = await upsertPullRequest(request({ title: 'Draft: WI-42: rev 3' }));
    expect(out).toMatchObject({ action: 'updated', state: 'open' });
    expect(gl.mergeRequests.get(1)!.title).toBe('WI-42: rev 3');
  });

  it('looks the merge request up by knownNumber first', async () => {
    gl.seed({ iid: 7, source: HEAD, labels: ['ameide', 'automated'], reviewerIds: [11, 12] });
    const out = await upsertPullRequest(request({ knownNumber: 7 }));
    expect(out).toMatchObject({ number: 7, action: 'updated', state: 'open' });
    expect(gl.server.calls.map((c) => c.operation)).toEqual(['getMergeRequest', 'updateMergeRequest']);
    expect(gl.server.calls[0].path).toBe(`/api/v4/projects/${ENCODED}/merge_requests/7`);
  });

  it('falls back to the source branch when knownNumber is gone or names another branch', async () => {
    gl.seed({ iid: 3, source: 'other' });
    const mine = gl.seed({ iid: 4, source: HEAD });
    expect((await upsertPullRequest(request({ knownNumber: 3 }))).number).toBe(mine.iid);
    expect(gl.mergeRequests.get(3)!.title).toBe('Earlier title');
    expect((await upsertPullRequest(request({ knownNumber: 99 }))).number).toBe(mine.iid);
    expect(gl.mergeRequests.size).toBe(2);
  });

  it('reopens a closed, unmerged merge request with state_event reopen', async () => {
    gl.seed({ iid: 5, source: HEAD, state: 'closed', labels: ['needs-design'] });
    const out = await upsertPullRequest(request());
    expect(out).toMatchObject({ number: 5, action: 'reopened', state: 'open' });
    expect(gl.server.callsTo('updateMergeRequest')[0].body).toMatchObject({ state_event: 'reopen', add_labels: 'ameide,automated', reviewer_ids: [11, 12] });
    expect(gl.mergeRequests.get(5)!.labels).toEqual(['needs-design', 'ameide', 'automated']);
    expect(gl.mergeRequests.size).toBe(1);
  });

  it('opens a new merge request when GitLab leaves the closed one closed', async () => {
    gl.seed({ iid: 5, source: HEAD, state: 'closed', unreopenable: true });
    expect(await upsertPullRequest(request())).toMatchObject({ number: 6, action: 'opened', state: 'draft' });
    expect(await upsertPullRequest(request())).toMatchObject({ number: 6, action: 'updated' });
  });

  it('reports a merged merge request as merged and changes nothing', async () => {
    gl.seed({ iid: 8, source: HEAD, state: 'merged' });
    expect(await upsertPullRequest(request())).toMatchObject({ number: 8, action: 'merged', state: 'merged' });
    expect(gl.mergeRequests.get(8)).toMatchObject({ state: 'merged', title: 'Earlier title', labels: [], reviewerIds: [] });
    expect(gl.server.calls.map((c) => c.operation)).toEqual(['listProjectMergeRequests']);
  });

  it('a merge request being merged ("locked") is a retryable error, not an update', async () => {
    gl.seed({ iid: 9, source: HEAD, state: 'locked' });
    expect(await failure(upsertPullRequest(request()))).toMatchObject({ retryable: true });
    expect(gl.server.callsTo('updateMergeRequest')).toHaveLength(0);
  });

  it('ignores merge requests from forks with a branch of the same name', async () => {
    gl.seed({ iid: 10, source: HEAD, sourceProjectId: 999 });
    expect(await upsertPullRequest(request())).toMatchObject({ number: 11, action: 'opened' });
  });

  it('adds only missing labels, adds reviewers to the ones already on it, and looks up only new usernames', async () => {
    gl.seed({ iid: 2, source: HEAD, labels: ['ameide'], reviewerIds: [11] });
    await upsertPullRequest(request({ reviewers: ['Alice', 'carol'], labels: ['ameide', 'ready'] }));
    expect(gl.server.callsTo('listUsers').map((c) => c.query.username)).toEqual(['carol']);
    expect(gl.server.callsTo('updateMergeRequest')[0].body).toMatchObject({ add_labels: 'ready', reviewer_ids: [11, 13] });
    expect(gl.mergeRequests.get(2)!.reviewerIds).toEqual([11, 13]);
  });

  it('honours draft: false and empty label and reviewer lists', async () => {
    expect(await upsertPullRequest(request({ draft: false, labels: [], reviewers: [] }))).toMatchObject({ state: 'open', action: 'opened' });
    expect(gl.server.callsTo('createMergeRequest')[0].body).toEqual({
      source_branch: HEAD,
      target_branch: 'main',
      title: 'WI-42: Add the widget exporter',
      description: 'Implements WI-42.',
    });
  });
});

describe('GitLab contract: errors', () => {
  it('409 "Another open merge request already exists" surfaces with GitLab’s message, not retryable', async () => {
    gl.server.script({
      operation: 'createMergeRequest',
      status: 409,
      body: { message: ['Another open merge request already exists for this source branch: !3'] },
    });
    const err = await failure(upsertPullRequest(request()));
    expect(err).toMatchObject({ provider: 'gitlab', status: 409, retryable: false });
    expect(err.message).toContain('Another open merge request already exists for this source branch: !3');
    expect(err.message).toContain(`POST /api/v4/projects/${ENCODED}/merge_requests`);
  });

  it('422 surfaces with GitLab’s message, not retryable', async () => {
    const err = await failure(upsertPullRequest(request({ base: HEAD })));
    expect(err).toMatchObject({ status: 422, retryable: false });
    expect(err.message).toContain("You can't use same project/branch for source and target");
  });

  it('400 with field errors names the fields', async () => {
    gl.server.script({ operation: 'createMergeRequest', status: 400, body: { message: { title: ["can't be blank"], source_branch: ['is invalid'] } } });
    expect((await failure(upsertPullRequest(request()))).message).toContain("title can't be blank; source_branch is invalid");
  });

  it('401 is not retryable', async () => {
    const err = await failure(upsertPullRequest(request({ token: 'glpat-wrongWRONGwrong0000' })));
    expect(err).toMatchObject({ status: 401, retryable: false });
    expect(err.message).toContain('401 Unauthorized');
    expect(err.message).not.toContain('glpat-wrong');
  });

  it('429 "Retry later" is retryable with retry-after, and gitbeaker does not retry it itself', async () => {
    gl.server.script({
      operation: 'listProjectMergeRequests',
      status: 429,
      text: 'Retry later\n',
      headers: { 'retry-after': '45', 'ratelimit-remaining': '0' },
    });
    const err = await failure(upsertPullRequest(request()));
    expect(err).toMatchObject({ status: 429, retryable: true, retryAfterSeconds: 45 });
    expect(err.message).toContain('Retry later');
    expect(gl.server.calls).toHaveLength(1);
  });

  it('429 without retry-after takes the wait from ratelimit-reset', async () => {
    const reset = Math.floor(Date.now() / 1000) + 30;
    gl.server.script({
      operation: 'listProjectMergeRequests',
      status: 429,
      text: 'Retry later\n',
      headers: { 'ratelimit-remaining': '0', 'ratelimit-reset': String(reset) },
    });
    const err = await failure(upsertPullRequest(request()));
    expect(err.retryAfterSeconds).toBeGreaterThanOrEqual(28);
    expect(err.retryAfterSeconds).toBeLessThanOrEqual(31);
  });

  it('502 is retryable and not retried by the client', async () => {
    gl.server.script({ operation: 'listProjectMergeRequests', status: 502, text: 'Bad Gateway' });
    expect(await failure(upsertPullRequest(request()))).toMatchObject({ status: 502, retryable: true });
    expect(gl.server.calls).toHaveLength(1);
  });

  it('an unknown reviewer fails before anything is written', async () => {
    const err = await failure(upsertPullRequest(request({ reviewers: ['mallory'] })));
    expect(err).toMatchObject({ retryable: false });
    expect(err.message).toContain('mallory');
    expect(gl.server.callsTo('createMergeRequest')).toHaveLength(0);
  });

  it('a refused connection is retryable and has no status', async () => {
    const err = await failure(upsertPullRequest(request({ apiUrl: 'http://127.0.0.1:9/api/v4' })));
    expect(err.retryable).toBe(true);
    expect(err.status).toBeUndefined();
  });

  it('never puts the token in a message, even when GitLab echoes it back', async () => {
    gl.server.script({
      operation: 'listProjectMergeRequests',
      status: 403,
      body: { message: `403 Forbidden - token ${TOKEN} lacks scope api`, error: `insufficient_scope for ${encodeURIComponent(TOKEN)}` },
    });
    const err = await failure(upsertPullRequest(request()));
    expect(err).toMatchObject({ status: 403, retryable: false });
    expect(err.message).toContain('[REDACTED]');
  });

  it('rejects a repository without a namespace before any request', async () => {
    await failure(upsertPullRequest(request({ repository: 'widgets' })));
    expect(gl.server.calls).toHaveLength(0);
  });
});

describe('GitLab contract: transport', () => {
  it('uses the fetch and user agent it is given, and the PRIVATE-TOKEN header', async () => {
    let count = 0;
    const counting: typeof fetch = (input, init) => {
      count++;
      return fetch(input, init);
    };
    await upsertPullRequest(request({ labels: [], reviewers: [] }), { fetch: counting, userAgent: 'ameide-worker/1.0' });
    expect(count).toBe(2);
    expect(gl.server.calls[0].headers['user-agent']).toBe('ameide-worker/1.0');
    expect(gl.server.calls[0].headers['private-token']).toBe(TOKEN);
  });

  it('accepts the API URL with a trailing slash', async () => {
    expect(await upsertPullRequest(request({ apiUrl: `${gl.apiUrl}/` }))).toMatchObject({ action: 'opened' });
  });
});

describe('GitLab contract: the contract check itself', () => {
  it('flags requests the documentation does not allow', async () => {
    const send = (method: string, path: string, body?: unknown): Promise<Response> =>
      fetch(`${gl.server.url}/api/v4${path}`, {
        method,
        headers: { 'private-token': TOKEN, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    // Unencoded project path: no endpoint has that many segments.
    expect((await send('GET', '/projects/acme/platform/widgets/merge_requests')).status).toBe(400);
    // Labels as an array, an undocumented attribute, a missing title.
    expect((await send('POST', `/projects/${ENCODED}/merge_requests`, { source_branch: 'a', target_branch: 'main', labels: ['x'], draft: true })).status).toBe(
      400,
    );
    expect((await send('GET', `/projects/${ENCODED}/merge_requests?state=everything&per_page=500`)).status).toBe(400);
    expect((await send('PUT', `/projects/${ENCODED}/merge_requests/1`, {})).status).toBe(400);
    expect((await send('PUT', `/projects/${ENCODED}/merge_requests/1`, { state_event: 'open' })).status).toBe(400);
    const v = gl.server.violations.splice(0).join('\n');
    expect(v).toMatch(/no documented endpoint/);
    expect(v).toMatch(/labels/);
    expect(v).toMatch(/draft/);
    expect(v).toMatch(/title/);
    expect(v).toMatch(/state/);
    expect(v).toMatch(/per_page/);
    expect(v).toMatch(/fewer than 1 properties|minProperties/);
    expect(v).toMatch(/state_event/);
  });
});
