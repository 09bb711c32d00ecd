import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ForgeError, upsertPullRequest, type PullRequestRequest } from '../../src/forges/index.js';
import { FakeGitHub } from '../contract/github-fake.js';
import { loadGitHubDescription, OpenApiContract } from '../contract/openapi.js';

/**
 * Contract tests for the GitHub provider: the real provider code (Octokit and all) against a local HTTP server that
 * plays GitHub's REST API, where every request the provider sends is validated against GitHub's published OpenAPI
 * description (@octokit/openapi, api.github.com) and every response the fake sends is shaped and checked against the
 * same description. A request that matches no operation or fails validation is a violation; afterEach asserts none.
 */

const TOKEN = 'ghp_FAKEtoken0123456789abcdefghijklmnopqr';
const HEAD = 'ameide/wi-42';

let contract: OpenApiContract;
let gh: FakeGitHub;

beforeAll(() => {
  contract = new OpenApiContract(loadGitHubDescription());
}, 60_000);

beforeEach(async () => {
  gh = await new FakeGitHub(contract, TOKEN).start();
  gh.branches.set(HEAD, 3);
});

afterEach(async () => {
  const violations = [...gh.server.violations];
  await gh.close();
  expect(violations).toEqual([]);
});

function request(over: Partial<PullRequestRequest> = {}): PullRequestRequest {
  return {
    provider: 'github',
    apiUrl: gh.url,
    repository: 'acme/widgets',
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
  // Wherever an error goes (message, stack, logs, a Temporal failure), the token does not.
  expect(fe.message).not.toContain(TOKEN);
  expect(String(fe.stack)).not.toContain(TOKEN);
  expect(JSON.stringify(fe)).not.toContain(TOKEN);
  return fe;
}

describe('GitHub contract: one pull request per piece of work', () => {
  it('opens a draft pull request with labels and reviewers on the first call', async () => {
    const out = await upsertPullRequest(request());
    expect(out).toMatchObject({ provider: 'github', number: 1, state: 'draft', action: 'opened', url: 'https://github.example/acme/widgets/pull/1' });
    expect(out.headCommit).toMatch(/^[0-9a-f]{40}$/);
    const pr = gh.pulls.get(1)!;
    expect(pr).toMatchObject({ head: HEAD, base: 'main', draft: true, title: 'WI-42: Add the widget exporter', body: 'Implements WI-42.' });
    expect(pr.labels).toEqual(['ameide', 'automated']);
    expect(pr.reviewers).toEqual(['alice', 'bob']);
    expect(gh.server.calls.map((c) => c.operation)).toEqual(['pulls/list', 'pulls/create', 'issues/add-labels', 'pulls/request-reviewers']);
    expect(gh.server.callsTo('pulls/list')[0].query).toMatchObject({ head: `acme:${HEAD}`, state: 'all' });
  });

  it('updates the same pull request on the next call: same number, new title and body, nothing created, nothing re-requested', async () => {
    const first = await upsertPullRequest(request());
    const second = await upsertPullRequest(request({ title: 'WI-42: Add the widget exporter (rev 2)', body: 'Second run.' }));
    expect(second).toMatchObject({ number: first.number, action: 'updated', state: 'draft', url: first.url });
    expect(gh.pulls.size).toBe(1);
    expect(gh.pulls.get(first.number)).toMatchObject({ title: 'WI-42: Add the widget exporter (rev 2)', body: 'Second run.' });
    expect(gh.server.callsTo('pulls/create')).toHaveLength(1);
    // Labels already on it and reviewers already requested are not sent again.
    expect(gh.server.callsTo('issues/add-labels')).toHaveLength(1);
    expect(gh.server.callsTo('pulls/request-reviewers')).toHaveLength(1);
  });

  it('looks the pull request up by knownNumber first', async () => {
    gh.seed({ number: 7, head: HEAD, labels: ['ameide', 'automated'], reviewers: ['alice', 'bob'] });
    const out = await upsertPullRequest(request({ knownNumber: 7, draft: false }));
    expect(out).toMatchObject({ number: 7, action: 'updated', state: 'open' });
    expect(gh.server.calls.map((c) => c.operation)).toEqual(['pulls/get', 'pulls/update']);
    expect(gh.server.callsTo('pulls/update')[0].body).toEqual({ title: 'WI-42: Add the widget exporter', body: 'Implements WI-42.', base: 'main' });
  });

  it('falls back to the head branch when knownNumber is gone or names another branch', async () => {
    gh.branches.set('other', 1);
    gh.seed({ number: 3, head: 'other' });
    const mine = gh.seed({ number: 4, head: HEAD });
    expect((await upsertPullRequest(request({ knownNumber: 3 }))).number).toBe(mine.number);
    expect(gh.pulls.get(3)!.title).toBe('Earlier title');
    expect((await upsertPullRequest(request({ knownNumber: 99 }))).number).toBe(mine.number);
    expect(gh.pulls.size).toBe(2);
  });

  it('reopens a closed, unmerged pull request', async () => {
    gh.seed({ number: 5, head: HEAD, state: 'closed', labels: ['needs-design'] });
    const out = await upsertPullRequest(request());
    expect(out).toMatchObject({ number: 5, action: 'reopened', state: 'open' });
    expect(gh.pulls.get(5)).toMatchObject({ state: 'open', title: 'WI-42: Add the widget exporter' });
    expect(gh.server.callsTo('pulls/update')[0].body).toMatchObject({ state: 'open' });
    // Labels are added, not replaced: the one a person put on it stays.
    expect(gh.pulls.get(5)!.labels).toEqual(['needs-design', 'ameide', 'automated']);
    expect(gh.pulls.size).toBe(1);
  });

  it('opens a new pull request when GitHub will not reopen one whose branch was force-pushed', async () => {
    gh.seed({ number: 5, head: HEAD, state: 'closed', forcePushed: true });
    const out = await upsertPullRequest(request());
    expect(out).toMatchObject({ number: 6, action: 'opened', state: 'draft' });
    expect(gh.pulls.get(5)!.state).toBe('closed');
    // The next run finds the new, open one rather than the closed one.
    expect(await upsertPullRequest(request())).toMatchObject({ number: 6, action: 'updated' });
  });

  it('reports a merged pull request as merged and changes nothing', async () => {
    gh.seed({ number: 8, head: HEAD, state: 'closed', merged: true });
    const out = await upsertPullRequest(request());
    expect(out).toMatchObject({ number: 8, action: 'merged', state: 'merged' });
    expect(gh.pulls.get(8)).toMatchObject({ state: 'closed', title: 'Earlier title', labels: [], reviewers: [] });
    expect(gh.server.calls.map((c) => c.operation)).toEqual(['pulls/list']);
  });

  it('prefers the open pull request over newer closed ones of the same branch', async () => {
    const open = gh.seed({ head: HEAD });
    gh.seed({ head: HEAD, state: 'closed' });
    expect(await upsertPullRequest(request())).toMatchObject({ number: open.number, action: 'updated' });
  });

  it('requests only reviewers not yet requested, never the author, and skips empty lists', async () => {
    gh.seed({ number: 2, head: HEAD, reviewers: ['Alice'], labels: ['AMEIDE'] });
    await upsertPullRequest(request({ reviewers: ['alice', 'carol', 'ameide-bot', 'carol'], labels: ['ameide'] }));
    expect(gh.server.callsTo('pulls/request-reviewers')[0].body).toEqual({ reviewers: ['carol'] });
    expect(gh.server.callsTo('issues/add-labels')).toHaveLength(0);
    await upsertPullRequest(request({ reviewers: [], labels: [] }));
    expect(gh.server.callsTo('pulls/request-reviewers')).toHaveLength(1);
  });

  it('honours draft: false', async () => {
    expect(await upsertPullRequest(request({ draft: false }))).toMatchObject({ state: 'open', action: 'opened' });
    expect(gh.pulls.get(1)!.draft).toBe(false);
  });
});

describe('GitHub contract: errors', () => {
  it('422 Validation Failed surfaces with the errors[] message and is not retryable', async () => {
    gh.branches.set(HEAD, 0);
    const err = await failure(upsertPullRequest(request()));
    expect(err).toMatchObject({ provider: 'github', status: 422, retryable: false });
    expect(err.retryAfterSeconds).toBeUndefined();
    expect(err.message).toContain('Validation Failed: No commits between main and ameide/wi-42');
    expect(err.message).toContain('POST /repos/acme/widgets/pulls');
  });

  it('422 without a message in errors[] names the field and code', async () => {
    const err = await failure(upsertPullRequest(request({ base: 'no-such-base' })));
    expect(err.message).toContain('Validation Failed: PullRequest.base invalid');
  });

  it('401 Bad credentials is not retryable', async () => {
    const err = await failure(upsertPullRequest(request({ token: 'ghp_wrongTOKENwrongTOKENwrongTOKEN1234' })));
    expect(err).toMatchObject({ status: 401, retryable: false });
    expect(err.message).toContain('Bad credentials');
    expect(err.message).not.toContain('ghp_wrongTOKEN');
  });

  it('a reviewer who is not a collaborator fails with GitHub’s message', async () => {
    const err = await failure(upsertPullRequest(request({ reviewers: ['mallory'] })));
    expect(err).toMatchObject({ status: 422, retryable: false });
    expect(err.message).toContain('Reviews may only be requested from collaborators');
  });

  it('403 with x-ratelimit-remaining 0 is retryable after x-ratelimit-reset, and is not retried by the client', async () => {
    const reset = Math.floor(Date.now() / 1000) + 120;
    gh.server.script({
      operation: 'pulls/list',
      status: 403,
      body: { message: 'API rate limit exceeded for user ID 1.', documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api' },
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
    });
    const err = await failure(upsertPullRequest(request()));
    expect(err).toMatchObject({ status: 403, retryable: true });
    expect(err.retryAfterSeconds).toBeGreaterThanOrEqual(118);
    expect(err.retryAfterSeconds).toBeLessThanOrEqual(121);
    expect(err.message).toContain('API rate limit exceeded');
    expect(gh.server.calls).toHaveLength(1);
  });

  it('403 secondary rate limit with retry-after is retryable', async () => {
    gh.server.script({
      operation: 'pulls/create',
      status: 403,
      body: { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' },
      headers: { 'retry-after': '60' },
    });
    expect(await failure(upsertPullRequest(request()))).toMatchObject({ status: 403, retryable: true, retryAfterSeconds: 60 });
  });

  it('a 403 that is not a rate limit is not retryable', async () => {
    gh.server.script({ operation: 'pulls/create', status: 403, body: { message: 'Resource not accessible by integration' } });
    const err = await failure(upsertPullRequest(request()));
    expect(err).toMatchObject({ status: 403, retryable: false });
    expect(err.retryAfterSeconds).toBeUndefined();
  });

  it('429 with retry-after is retryable with that delay, one request only', async () => {
    gh.server.script({ operation: 'pulls/list', status: 429, body: { message: 'Too Many Requests' }, headers: { 'retry-after': '30' } });
    expect(await failure(upsertPullRequest(request()))).toMatchObject({ status: 429, retryable: true, retryAfterSeconds: 30 });
    expect(gh.server.calls).toHaveLength(1);
  });

  it('5xx is retryable without a delay taken from the hourly quota window', async () => {
    gh.server.script({ operation: 'pulls/update', status: 502, text: 'Bad Gateway' });
    gh.seed({ head: HEAD });
    const err = await failure(upsertPullRequest(request()));
    expect(err).toMatchObject({ status: 502, retryable: true });
    expect(err.retryAfterSeconds).toBeUndefined();
    expect(err.message).toContain('Bad Gateway');
  });

  it('a refused connection is retryable and has no status', async () => {
    const url = gh.url;
    const err = await failure(upsertPullRequest(request({ apiUrl: 'http://127.0.0.1:9' })));
    expect(err.retryable).toBe(true);
    expect(err.status).toBeUndefined();
    expect(err.message).toContain('GET /repos/acme/widgets/pulls');
    expect(url).toBe(gh.url);
  });

  it('never puts the token in a message, even when GitHub echoes it back', async () => {
    gh.server.script({
      operation: 'pulls/list',
      status: 422,
      body: { message: `Validation Failed for ${TOKEN}`, errors: [{ message: `token ${TOKEN} rejected` }] },
    });
    const err = await failure(upsertPullRequest(request()));
    expect(err.message).toContain('[REDACTED]');
  });

  it('rejects a repository that is not owner/name before any request', async () => {
    const err = await failure(upsertPullRequest(request({ repository: 'acme/group/widgets' })));
    expect(err).toMatchObject({ provider: 'github', retryable: false });
    expect(gh.server.calls).toHaveLength(0);
  });
});

describe('GitHub contract: transport', () => {
  it('uses the fetch and user agent it is given', async () => {
    const seen: string[] = [];
    const counting: typeof fetch = (input, init) => {
      seen.push(String(input instanceof Request ? input.url : input));
      return fetch(input, init);
    };
    await upsertPullRequest(request({ labels: [], reviewers: [] }), { fetch: counting, userAgent: 'ameide-worker/1.0' });
    expect(seen).toHaveLength(2);
    expect(String(gh.server.calls[0].headers['user-agent'])).toMatch(/^ameide-worker\/1\.0 /);
    expect(gh.server.calls[0].headers.authorization).toBe(`token ${TOKEN}`);
  });
});

describe('GitHub contract: the contract check itself', () => {
  it('flags requests the description does not allow', async () => {
    const send = (method: string, path: string, body?: unknown): Promise<Response> =>
      fetch(`${gh.url}${path}`, {
        method,
        headers: { authorization: `token ${TOKEN}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    expect((await send('POST', '/repos/acme/widgets/pulls', { head: HEAD, base: 'main', title: 'x', labels: ['a'] })).status).toBe(400);
    expect((await send('PATCH', '/repos/acme/widgets/pulls/abc', { title: 'x' })).status).toBe(400);
    expect((await send('GET', '/repos/acme/widgets/pulls?state=everything')).status).toBe(400);
    expect((await send('POST', '/repos/acme/widgets/pulls', { base: 'main' })).status).toBe(400);
    expect((await send('GET', '/repos/acme/widgets/no-such-thing')).status).toBe(400);
    const v = gh.server.violations.splice(0);
    expect(v.join('\n')).toMatch(/labels/);
    expect(v.join('\n')).toMatch(/pull_number/);
    expect(v.join('\n')).toMatch(/state/);
    expect(v.join('\n')).toMatch(/head/);
    expect(v.join('\n')).toMatch(/no path template/);
    expect(v.length).toBeGreaterThanOrEqual(5);
  });
});
