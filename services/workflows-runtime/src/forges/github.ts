import { Octokit } from '@octokit/rest';
import { ForgeError, httpError, networkError, toForgeError } from './errors.js';
import type { PullRequestOutcome, PullRequestRequest, UpsertOptions } from './types.js';
import { distinct, lower } from './names.js';

export const GITHUB_API_URL = 'https://api.github.com';

/** The fields this module reads; both the full pull request (pulls.get/create/update) and the list item carry them. */
interface GhPull {
  number: number;
  html_url: string;
  state: string;
  draft?: boolean;
  merged_at: string | null;
  head: { ref: string; sha: string };
  user: { login: string } | null;
  labels: ReadonlyArray<{ name?: string }>;
  requested_reviewers?: ReadonlyArray<{ login: string }> | null;
}

const noop = (): void => {};

/** "owner/name" split in two; anything else is a configuration error that no retry fixes. */
function ownerAndRepo(repository: string): [string, string] {
  const parts = repository.split('/');
  if (parts.length !== 2 || parts.some((p) => !p.trim())) {
    throw new ForgeError('github', `GitHub: repository must be "owner/name", got "${repository}"`, { retryable: false });
  }
  return [parts[0], parts[1]];
}

/** Octokit's RequestError (duck-typed: @octokit/request-error is not a direct dependency) to a ForgeError. */
function fromOctokit(err: unknown, token: string): ForgeError {
  if (err instanceof ForgeError) return err;
  const e = err as {
    status?: unknown;
    response?: { headers?: Record<string, string | number | undefined>; data?: unknown };
    request?: { method?: string; url?: string };
  };
  const method = e?.request?.method ?? 'GET';
  const path = pathOf(e?.request?.url);
  // No response: fetch itself failed (Octokit reports that as status 500) or the call was aborted.
  if (typeof e?.status === 'number' && e.response) {
    return httpError('github', { status: e.status, headers: e.response.headers ?? {}, method, path, detail: githubMessage(e.response.data) }, token);
  }
  if (e?.request) return networkError('github', method, path, err, token);
  return toForgeError('github', err, token);
}

function pathOf(url: string | undefined): string {
  if (!url) return '?';
  try {
    return new URL(url).pathname;
  } catch {
    return url.replace(/[?#].*$/, '');
  }
}

/**
 * GitHub's error body as one line: `message`, then each entry of `errors[]` by its `message`, else
 * `resource.field code` (e.g. "Validation Failed: No commits between main and ameide/wi-42").
 */
export function githubMessage(data: unknown): string {
  if (typeof data === 'string') return data.trim().slice(0, 500);
  if (!data || typeof data !== 'object') return '';
  const d = data as { message?: unknown; errors?: unknown };
  const message = typeof d.message === 'string' ? d.message : '';
  const details = Array.isArray(d.errors)
    ? d.errors.map((x: unknown) => {
        if (typeof x === 'string') return x;
        if (!x || typeof x !== 'object') return String(x);
        const o = x as { message?: unknown; resource?: unknown; field?: unknown; code?: unknown };
        if (typeof o.message === 'string' && o.message) return o.message;
        const where = [o.resource, o.field].filter((s) => typeof s === 'string' && s).join('.');
        return [where, typeof o.code === 'string' ? o.code : ''].filter(Boolean).join(' ');
      })
    : [];
  const parts = details.filter(Boolean);
  return parts.length ? `${message}: ${parts.join('; ')}` : message;
}

function outcomeOf(pr: GhPull, action: PullRequestOutcome['action']): PullRequestOutcome {
  const state: PullRequestOutcome['state'] = pr.merged_at ? 'merged' : pr.state === 'closed' ? 'closed' : pr.draft ? 'draft' : 'open';
  return { provider: 'github', number: pr.number, url: pr.html_url, state, action, headCommit: pr.head.sha };
}

/**
 * Opens or updates the one pull request for `req.head` on GitHub.
 *
 * Calls: pulls.get (knownNumber) else pulls.list(head "owner:branch", state all, newest first); then pulls.create,
 * or pulls.update (title/body/base, plus state "open" to reopen); then issues.addLabels for the labels not yet on it
 * and pulls.requestReviewers for the reviewers not yet requested. A merged pull request is left alone.
 */
export async function upsertGitHubPullRequest(req: PullRequestRequest, opts: UpsertOptions = {}): Promise<PullRequestOutcome> {
  const [owner, repo] = ownerAndRepo(req.repository);
  const octokit = new Octokit({
    auth: req.token,
    baseUrl: (req.apiUrl ?? GITHUB_API_URL).replace(/\/+$/, ''),
    ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
    // @octokit/rest has no retry or throttling plugin: a failed call fails here and Temporal's activity retry decides.
    request: opts.fetch ? { fetch: opts.fetch } : {},
    // Failures are thrown as ForgeError; Octokit's own error log would only repeat them.
    log: { debug: noop, info: noop, warn: noop, error: noop },
  });
  const gh = async <T>(call: Promise<{ data: T }>): Promise<T> => {
    try {
      return (await call).data;
    } catch (err) {
      throw fromOctokit(err, req.token);
    }
  };

  const find = async (): Promise<GhPull | undefined> => {
    if (req.knownNumber !== undefined) {
      try {
        const pr: GhPull = await gh(octokit.rest.pulls.get({ owner, repo, pull_number: req.knownNumber }));
        // A stored number that now names another branch's pull request (wrong repository, reused number) is ignored.
        if (pr.head.ref === req.head) return pr;
      } catch (err) {
        if (!(err instanceof ForgeError && err.status === 404)) throw err;
      }
    }
    const pulls: GhPull[] = await gh(
      octokit.rest.pulls.list({ owner, repo, head: `${owner}:${req.head}`, state: 'all', sort: 'created', direction: 'desc', per_page: 100 }),
    );
    // GitHub allows one open pull request per head and base; prefer an open one, else the newest.
    return pulls.find((p) => p.state === 'open') ?? pulls[0];
  };

  const create = async (): Promise<GhPull> =>
    gh(octokit.rest.pulls.create({ owner, repo, head: req.head, base: req.base, title: req.title, body: req.body, draft: req.draft }));

  const existing = await find();
  let pr: GhPull;
  let action: PullRequestOutcome['action'];
  if (!existing) {
    pr = await create();
    action = 'opened';
  } else if (existing.merged_at) {
    return outcomeOf(existing, 'merged');
  } else if (existing.state === 'open') {
    pr = await gh(octokit.rest.pulls.update({ owner, repo, pull_number: existing.number, title: req.title, body: req.body, base: req.base }));
    action = 'updated';
  } else {
    try {
      pr = await gh(octokit.rest.pulls.update({ owner, repo, pull_number: existing.number, state: 'open', title: req.title, body: req.body, base: req.base }));
      action = 'reopened';
    } catch (err) {
      // GitHub refuses to reopen once the head branch was force-pushed or recreated since closing (422). The work
      // still needs a pull request, so it gets a new one; if that fails too, that error is the one reported.
      if (!(err instanceof ForgeError && err.status === 422)) throw err;
      pr = await create();
      action = 'opened';
    }
  }

  // Labels are added, not set: labels people put on the pull request stay (setLabels would remove them).
  const onIt = new Set(pr.labels.map((l) => lower(l.name ?? '')));
  const labels = distinct(req.labels).filter((l) => !onIt.has(lower(l)));
  if (labels.length) await gh(octokit.rest.issues.addLabels({ owner, repo, issue_number: pr.number, labels }));

  // Only reviewers not yet requested; GitHub rejects a request to the pull request's own author.
  const requested = new Set((pr.requested_reviewers ?? []).map((u) => lower(u.login)));
  const author = pr.user ? lower(pr.user.login) : undefined;
  const reviewers = distinct(req.reviewers).filter((r) => !requested.has(lower(r)) && lower(r) !== author);
  if (reviewers.length) pr = await gh(octokit.rest.pulls.requestReviewers({ owner, repo, pull_number: pr.number, reviewers }));

  return outcomeOf(pr, action);
}
