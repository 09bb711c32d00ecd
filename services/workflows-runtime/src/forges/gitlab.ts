import { MergeRequests, Users } from '@gitbeaker/rest';
import { ForgeError, httpError, networkError } from './errors.js';
import type { PullRequestOutcome, PullRequestRequest, UpsertOptions } from './types.js';
import { distinct, lower } from './names.js';

export const GITLAB_API_URL = 'https://gitlab.com/api/v4';

type RequesterFn = NonNullable<ConstructorParameters<typeof MergeRequests>[0]['requesterFn']>;
type Requester = ReturnType<RequesterFn>;
type RequestOptions = NonNullable<Parameters<Requester['get']>[1]>;
type Formatted = Awaited<ReturnType<Requester['get']>>;

/** The fields this module reads from a merge request (list item, single, create and update responses all carry them). */
interface GlMergeRequest {
  iid: number;
  web_url: string;
  state: string;
  draft?: boolean;
  work_in_progress?: boolean;
  sha?: string | null;
  source_branch: string;
  source_project_id?: number;
  target_project_id?: number;
  labels?: ReadonlyArray<string | { name: string }> | null;
  reviewers?: ReadonlyArray<{ id: number; username: string }> | null;
}

/**
 * The GitLab instance root gitbeaker wants (it appends /api/v4 itself): the API URL without its /api/v4 suffix.
 * A URL without that suffix is taken as the instance root as it is.
 */
export function gitlabHost(apiUrl: string = GITLAB_API_URL): string {
  return apiUrl.replace(/\/+$/, '').replace(/\/api\/v4$/i, '');
}

/** The prefixes GitLab reads as "draft" at the start of a title. */
const DRAFT_PREFIX = /^\s*(?:\[draft\]|\(draft\)|draft\s*:|draft\s+-)\s*/i;

/** The title GitLab should show: GitLab has no draft flag on create/update, a "Draft: " title prefix makes a draft. */
export function gitlabTitle(title: string, draft: boolean): string {
  let t = title;
  while (DRAFT_PREFIX.test(t)) t = t.replace(DRAFT_PREFIX, '');
  if (!t.trim()) t = title.trim();
  return draft ? `Draft: ${t}` : t;
}

const snake = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

function snakeKeys(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snake(k), snakeKeys(v)]));
}

/** gitbeaker's query encoding: snake_case keys, arrays as `key[]=a&key[]=b`, objects as `key[sub]=v`. */
function encodeQuery(params: Record<string, unknown>): string {
  const q = new URLSearchParams();
  const add = (key: string, value: unknown): void => {
    if (value === undefined || value === null) return;
    if (Array.isArray(value)) for (const item of value) add(`${key}[]`, item);
    else if (typeof value === 'object') for (const [k, v] of Object.entries(value)) add(`${key}[${snake(k)}]`, v);
    else q.append(key, String(value as string | number | boolean));
  };
  for (const [k, v] of Object.entries(params)) add(snake(k), v);
  return q.toString();
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!text) return res.status === 204 ? null : {};
  if (/^application\/(?:[\w.+-]+\+)?json\b/i.test(res.headers.get('content-type') ?? '')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

function flatten(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(flatten).filter(Boolean).join('; ');
  if (typeof value === 'object') {
    return Object.entries(value)
      .map(([k, v]) => `${k} ${flatten(v)}`.trim())
      .join('; ');
  }
  return String(value as number | boolean);
}

/**
 * GitLab's error body as one line: `message` (a string, a list, or field → messages), then `error` and
 * `error_description` (OAuth-style errors); a plain-text body (e.g. "Retry later" on 429) as it is.
 */
export function gitlabMessage(data: unknown): string {
  if (typeof data === 'string') return data.trim().slice(0, 500);
  if (!data || typeof data !== 'object') return '';
  const d = data as { message?: unknown; error?: unknown; error_description?: unknown };
  return [flatten(d.message), flatten(d.error), flatten(d.error_description)].filter(Boolean).join(': ');
}

/**
 * gitbeaker's transport, replaced: its default one calls the global fetch (no way to pass another) and retries
 * 429 and 502 ten times by itself, after which the status and Retry-After are lost. This one uses the given fetch,
 * never retries (Temporal's activity retry does, with the ForgeError's retryable/retryAfterSeconds), and turns
 * every error response into a ForgeError with GitLab's message. Request building follows gitbeaker's own
 * (snake_case keys, JSON bodies, bracketed array queries), so the resource classes work unchanged.
 */
function gitlabRequester(fetchImpl: typeof fetch, token: string, userAgent?: string): RequesterFn {
  return (resource) => {
    const base = resource.url.endsWith('/') ? resource.url : `${resource.url}/`;
    const send = async (method: string, endpoint: string, options: RequestOptions = {}): Promise<Formatted> => {
      const url = new URL(endpoint, base);
      url.search = encodeQuery(options.searchParams ?? {});
      const headers: Record<string, string> = { accept: 'application/json', ...resource.headers };
      for (const [name, value] of Object.entries(resource.authHeaders)) headers[name] = await value();
      if (options.sudo !== undefined) headers.sudo = String(options.sudo);
      if (userAgent) headers['user-agent'] = userAgent;
      let body: string | undefined;
      // gitbeaker passes its leftover options as the body of every DELETE too; an empty one is not sent.
      const hasBody = options.body !== undefined && (method === 'POST' || method === 'PUT' || method === 'PATCH' || Object.keys(options.body).length > 0);
      if (hasBody && options.body) {
        if (options.body instanceof FormData) throw new ForgeError('gitlab', 'GitLab: form uploads are not supported by this client', { retryable: false });
        body = JSON.stringify(snakeKeys(options.body));
        headers['content-type'] = 'application/json';
      }
      let res: Response;
      let data: unknown;
      try {
        res = await fetchImpl(url, { method, headers, body, signal: options.signal });
        data = await readBody(res);
      } catch (err) {
        throw networkError('gitlab', method, url.pathname, err, token);
      }
      const responseHeaders = Object.fromEntries(res.headers);
      if (!res.ok) throw httpError('gitlab', { status: res.status, headers: responseHeaders, method, path: url.pathname, detail: gitlabMessage(data) }, token);
      // gitbeaker's requester is generic in the body type; the resource methods declare what each endpoint returns.
      return { body: data as Formatted['body'], headers: responseHeaders, status: res.status };
    };
    return {
      get: (endpoint, options) => send('GET', endpoint, options),
      post: (endpoint, options) => send('POST', endpoint, options),
      put: (endpoint, options) => send('PUT', endpoint, options),
      patch: (endpoint, options) => send('PATCH', endpoint, options),
      delete: (endpoint, options) => send('DELETE', endpoint, options),
    } as Requester;
  };
}

const isDraft = (mr: GlMergeRequest): boolean => Boolean(mr.draft ?? mr.work_in_progress);

function outcomeOf(mr: GlMergeRequest, action: PullRequestOutcome['action']): PullRequestOutcome {
  const state: PullRequestOutcome['state'] = mr.state === 'merged' ? 'merged' : mr.state === 'closed' ? 'closed' : isDraft(mr) ? 'draft' : 'open';
  const outcome: PullRequestOutcome = { provider: 'gitlab', number: mr.iid, url: mr.web_url, state, action };
  if (mr.sha) outcome.headCommit = mr.sha;
  return outcome;
}

/** gitbeaker types `state` without the documented "all" (every state; also GitLab's default). */
const ALL_STATES = { state: 'all' } as unknown as { state?: 'opened' };

/**
 * Opens or updates the one merge request for `req.head` on GitLab.
 *
 * Calls: MergeRequests.show (knownNumber) else MergeRequests.all(sourceBranch, state all, newest first); Users.all
 * (username) for each reviewer not yet on it; then MergeRequests.create (title "Draft: ..." for a draft, labels,
 * reviewer_ids), or MergeRequests.edit (title/description/target_branch, add_labels, reviewer_ids, plus
 * state_event "reopen" for a closed one). A merged merge request is left alone.
 */
export async function upsertGitLabMergeRequest(req: PullRequestRequest, opts: UpsertOptions = {}): Promise<PullRequestOutcome> {
  const project = req.repository.replace(/^\/+|\/+$/g, '');
  if (!/^[^/]+(?:\/[^/]+)+$/.test(project)) {
    throw new ForgeError('gitlab', `GitLab: repository must be "group/project" or "group/subgroup/project", got "${req.repository}"`, { retryable: false });
  }
  const config = {
    host: gitlabHost(req.apiUrl),
    token: req.token,
    requesterFn: gitlabRequester(opts.fetch ?? globalThis.fetch, req.token, opts.userAgent),
  };
  const mrs = new MergeRequests(config);
  const users = new Users(config);

  const find = async (): Promise<GlMergeRequest | undefined> => {
    if (req.knownNumber !== undefined) {
      try {
        const mr: GlMergeRequest = await mrs.show(project, req.knownNumber);
        if (mr.source_branch === req.head) return mr;
      } catch (err) {
        if (!(err instanceof ForgeError && err.status === 404)) throw err;
      }
    }
    // page 1 only: gitbeaker would otherwise follow every next link; 100 merge requests of one branch is plenty.
    const list: GlMergeRequest[] = await mrs.all({
      projectId: project,
      sourceBranch: req.head,
      ...ALL_STATES,
      orderBy: 'created_at',
      sort: 'desc',
      perPage: 100,
      page: 1,
    });
    // Merge requests from forks with a branch of the same name are someone else's.
    const own = list.filter((m) => m.source_project_id === undefined || m.source_project_id === m.target_project_id);
    return own.find((m) => m.state === 'opened' || m.state === 'locked') ?? own[0];
  };

  const userIds = async (usernames: readonly string[]): Promise<number[]> => {
    const ids: number[] = [];
    for (const username of usernames) {
      const found = await users.all({ username });
      const user = found.find((u) => lower(u.username) === lower(username));
      if (!user) throw new ForgeError('gitlab', `GitLab: reviewer "${username}" is not a user on this GitLab`, { retryable: false });
      ids.push(user.id);
    }
    return ids;
  };

  const labels = distinct(req.labels);
  const reviewers = distinct(req.reviewers);

  const create = async (): Promise<GlMergeRequest> => {
    const reviewerIds = await userIds(reviewers);
    return mrs.create(project, req.head, req.base, gitlabTitle(req.title, req.draft), {
      description: req.body,
      ...(labels.length ? { labels: labels.join(',') } : {}),
      ...(reviewerIds.length ? { reviewerIds } : {}),
    });
  };

  const update = async (mr: GlMergeRequest, reopen: boolean): Promise<GlMergeRequest> => {
    const onIt = new Set((mr.labels ?? []).map((l) => lower(typeof l === 'string' ? l : l.name)));
    const addLabels = labels.filter((l) => !onIt.has(lower(l)));
    const current = mr.reviewers ?? [];
    const currentNames = new Set(current.map((r) => lower(r.username)));
    const newIds = await userIds(reviewers.filter((r) => !currentNames.has(lower(r))));
    return mrs.edit(project, mr.iid, {
      // The draft state stays as it is: a person may have marked the merge request ready.
      title: gitlabTitle(req.title, isDraft(mr)),
      description: req.body,
      targetBranch: req.base,
      ...(reopen ? { stateEvent: 'reopen' } : {}),
      ...(addLabels.length ? { addLabels: addLabels.join(',') } : {}),
      // reviewer_ids replaces the set, so the ones already on it are sent along.
      ...(newIds.length ? { reviewerIds: [...current.map((r) => r.id), ...newIds] } : {}),
    });
  };

  const existing = await find();
  if (!existing) return outcomeOf(await create(), 'opened');
  if (existing.state === 'merged') return outcomeOf(existing, 'merged');
  if (existing.state === 'locked') {
    // "locked" is GitLab's short state while a merge is being carried out: it is about to be merged.
    throw new ForgeError('gitlab', `GitLab: merge request !${existing.iid} is being merged (state "locked"); try again shortly`, { retryable: true });
  }
  if (existing.state === 'opened') return outcomeOf(await update(existing, false), 'updated');
  const reopened = await update(existing, true);
  // GitLab answers 200 but leaves the merge request closed when it cannot reopen it (e.g. its source branch was
  // deleted and pushed again); the work still needs one, so it gets a new merge request.
  if (reopened.state === 'closed') return outcomeOf(await create(), 'opened');
  return outcomeOf(reopened, 'reopened');
}
