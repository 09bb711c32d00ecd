import { describe, expect, it } from 'vitest';
import { classifyHttpError, ForgeError as InternalForgeError, redactToken, toForgeError } from '../../src/forges/errors.js';
import { githubMessage } from '../../src/forges/github.js';
import { gitlabHost, gitlabMessage, gitlabTitle } from '../../src/forges/gitlab.js';
import { ForgeError, repositoryFromUrl, upsertPullRequest, type PullRequestRequest } from '../../src/forges/index.js';

describe('repositoryFromUrl', () => {
  it.each([
    ['https://github.com/acme/widgets.git', 'acme/widgets'],
    ['https://github.com/acme/widgets', 'acme/widgets'],
    ['https://github.com/acme/widgets/', 'acme/widgets'],
    ['https://x-access-token:ghs_secret@github.com/acme/widgets.git', 'acme/widgets'],
    ['http://ghe.internal.example/acme/widgets.git', 'acme/widgets'],
    ['git@github.com:acme/widgets.git', 'acme/widgets'],
    ['git@github.com:acme/widgets', 'acme/widgets'],
    ['github.com:acme/widgets.git', 'acme/widgets'],
    ['ssh://git@github.com/acme/widgets.git', 'acme/widgets'],
    ['ssh://git@gitlab.example.com/group/sub/project.git', 'group/sub/project'],
    ['ssh://git@gitlab.example.com:2222/group/sub/project.git', 'group/sub/project'],
    ['git@gitlab.example.com:group/sub/deeper/project.git', 'group/sub/deeper/project'],
    ['https://gitlab.com/group/project/-/tree/main', 'group/project'],
    ['git+ssh://git@github.com/acme/widgets.git', 'acme/widgets'],
    ['  https://github.com/acme/widgets.git\n', 'acme/widgets'],
  ])('%s → %s', (url, repo) => {
    expect(repositoryFromUrl(url)).toBe(repo);
  });

  it.each([
    '',
    'not a url',
    'https://github.com/',
    'https://github.com/acme',
    'git@github.com:widgets.git',
    'file:///srv/git/acme/widgets.git',
    '/srv/git/acme/widgets.git',
    './acme/widgets',
    'C:\\repos\\acme\\widgets',
    'C:/repos/acme/widgets',
    'ftp://example.com/acme/widgets.git',
    'https://github.com/acme/../widgets',
  ])('%j → undefined', (url) => {
    expect(repositoryFromUrl(url)).toBeUndefined();
  });
});

describe('classifyHttpError', () => {
  const now = Date.parse('2026-03-01T10:00:00Z');
  const epoch = now / 1000;

  it('429, 5xx and rate-limited 403 are retryable; 401, 403, 404, 409, 422 are not', () => {
    expect(classifyHttpError(429, {}, '', now)).toEqual({ retryable: true });
    for (const s of [500, 502, 503, 504]) expect(classifyHttpError(s, {}, '', now).retryable).toBe(true);
    for (const s of [400, 401, 403, 404, 409, 422]) expect(classifyHttpError(s, {}, 'nope', now)).toEqual({ retryable: false });
    expect(classifyHttpError(403, { 'x-ratelimit-remaining': '0' }, '', now).retryable).toBe(true);
    expect(classifyHttpError(403, { 'x-ratelimit-remaining': '12' }, 'Forbidden', now).retryable).toBe(false);
    expect(classifyHttpError(403, {}, 'You have exceeded a secondary rate limit', now).retryable).toBe(true);
  });

  it('takes the wait from retry-after (seconds or a date), else from the reset of an exhausted quota', () => {
    expect(classifyHttpError(429, { 'retry-after': '17' }, '', now).retryAfterSeconds).toBe(17);
    expect(classifyHttpError(503, { 'retry-after': 'Sun, 01 Mar 2026 10:01:30 GMT' }, '', now).retryAfterSeconds).toBe(90);
    expect(classifyHttpError(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(epoch + 300) }, '', now).retryAfterSeconds).toBe(300);
    expect(classifyHttpError(429, { 'ratelimit-reset': String(epoch + 5) }, '', now).retryAfterSeconds).toBe(5);
    // A reset in the past means "now", never a negative wait.
    expect(classifyHttpError(403, { 'x-ratelimit-remaining': 0, 'x-ratelimit-reset': epoch - 50 }, '', now).retryAfterSeconds).toBe(0);
    // GitHub sends x-ratelimit-reset on every response: a 502 is not told to wait for the quota window.
    expect(classifyHttpError(502, { 'x-ratelimit-remaining': '4000', 'x-ratelimit-reset': String(epoch + 3000) }, '', now).retryAfterSeconds).toBeUndefined();
    // Nor is a non-retryable error given a wait.
    expect(classifyHttpError(422, { 'retry-after': '10' }, '', now).retryAfterSeconds).toBeUndefined();
  });
});

describe('forge error messages', () => {
  it('flattens GitHub error bodies: message plus each errors[] message, else resource.field code', () => {
    expect(
      githubMessage({ message: 'Validation Failed', errors: [{ resource: 'PullRequest', code: 'custom', message: 'No commits between main and x' }] }),
    ).toBe('Validation Failed: No commits between main and x');
    expect(githubMessage({ message: 'Validation Failed', errors: [{ resource: 'PullRequest', field: 'head', code: 'invalid' }, 'plain'] })).toBe(
      'Validation Failed: PullRequest.head invalid; plain',
    );
    expect(githubMessage({ message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' })).toBe('Bad credentials');
    expect(githubMessage('<html>Bad Gateway</html>')).toBe('<html>Bad Gateway</html>');
    expect(githubMessage(undefined)).toBe('');
  });

  it('flattens GitLab error bodies: message as string, list or field map, and error/error_description', () => {
    expect(gitlabMessage({ message: '401 Unauthorized' })).toBe('401 Unauthorized');
    expect(gitlabMessage({ message: ['Another open merge request already exists for this source branch: !1'] })).toBe(
      'Another open merge request already exists for this source branch: !1',
    );
    expect(gitlabMessage({ message: { title: ["can't be blank"], labels: ['is invalid'] } })).toBe("title can't be blank; labels is invalid");
    expect(gitlabMessage({ error: 'insufficient_scope', error_description: 'The request requires higher privileges.' })).toBe(
      'insufficient_scope: The request requires higher privileges.',
    );
    expect(gitlabMessage('Retry later\n')).toBe('Retry later');
  });

  it('redacts the token in every form, and toForgeError keeps ForgeErrors but redacts them', () => {
    const token = 'glpat-abcdefghij0123456789';
    expect(redactToken(`a ${token} b ${encodeURIComponent(token)} c ${Buffer.from(token).toString('base64')}`, token)).not.toMatch(/abcdefghij/);
    const leaky = new InternalForgeError('gitlab', `echo ${token}`, { status: 403, retryable: false });
    const clean = toForgeError('gitlab', leaky, token);
    expect(clean.message).toBe('echo [REDACTED]');
    expect(clean).toMatchObject({ status: 403, retryable: false, provider: 'gitlab' });
    const same = new InternalForgeError('github', 'fine', { retryable: true, retryAfterSeconds: 3 });
    expect(toForgeError('github', same, token)).toBe(same);
    const wrapped = toForgeError('github', new TypeError(`boom ${token}`), token);
    expect(wrapped).toBeInstanceOf(ForgeError);
    expect(wrapped).toMatchObject({ retryable: false, message: 'GitHub: boom [REDACTED]' });
  });
});

describe('GitLab helpers', () => {
  it('derives the instance root from the API URL', () => {
    expect(gitlabHost()).toBe('https://gitlab.com');
    expect(gitlabHost('https://gitlab.example.com/api/v4/')).toBe('https://gitlab.example.com');
    expect(gitlabHost('https://example.com/gitlab/api/v4')).toBe('https://example.com/gitlab');
    expect(gitlabHost('https://gitlab.example.com')).toBe('https://gitlab.example.com');
  });

  it('marks drafts by title prefix, once, and removes a prefix from a title that is not a draft', () => {
    expect(gitlabTitle('WI-42: x', true)).toBe('Draft: WI-42: x');
    expect(gitlabTitle('Draft: WI-42: x', true)).toBe('Draft: WI-42: x');
    expect(gitlabTitle('[Draft] (draft) WI-42: x', true)).toBe('Draft: WI-42: x');
    expect(gitlabTitle('Draft: WI-42: x', false)).toBe('WI-42: x');
    expect(gitlabTitle('Drafting the exporter', false)).toBe('Drafting the exporter');
    expect(gitlabTitle('Draft:', false)).toBe('Draft:');
  });
});

describe('upsertPullRequest input checks', () => {
  const base: PullRequestRequest = {
    provider: 'github',
    repository: 'acme/widgets',
    token: 'ghp_abcdefghijklmnop',
    head: 'ameide/wi-1',
    base: 'main',
    title: 't',
    body: '',
    draft: false,
    labels: [],
    reviewers: [],
  };
  const never: typeof fetch = () => Promise.reject(new Error('no request expected'));

  it('rejects missing fields, bad knownNumbers and unknown providers without a request, not retryable', async () => {
    for (const req of [
      { ...base, token: '' },
      { ...base, head: ' ' },
      { ...base, knownNumber: 0 },
      { ...base, knownNumber: 1.5 },
      { ...base, provider: 'bitbucket' as 'github' },
    ]) {
      const err = await upsertPullRequest(req, { fetch: never }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ForgeError);
      expect(err).toMatchObject({ retryable: false });
    }
  });
});
