import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Contract, ContractRequest, Validation } from './fake-server.js';

/**
 * JSON Schemas for the GitLab REST (v4) endpoints the provider calls. GitLab publishes no OpenAPI description of
 * these in an npm package, so they are written from GitLab's documentation:
 *
 * - Merge requests API (docs.gitlab.com/ee/api/merge_requests.html):
 *   "List project merge requests"  GET  /projects/:id/merge_requests
 *   "Get single MR"                GET  /projects/:id/merge_requests/:merge_request_iid
 *   "Create MR"                    POST /projects/:id/merge_requests
 *   "Update MR"                    PUT  /projects/:id/merge_requests/:merge_request_iid
 *   and the response attributes of "Get single MR" (the "Response" table).
 * - Users API (docs.gitlab.com/ee/api/users.html), "List users": GET /users?username=
 * - REST API basics (docs.gitlab.com/ee/api/rest/): `:id` is "The ID or URL-encoded path of the project"
 *   (namespaced path encoding: `group%2Fsubgroup%2Fproject`), pagination `page` / `per_page` (at most 100).
 *
 * Every attribute the documentation lists for a request is declared with its documented type; anything else is an
 * error (additionalProperties: false), as is a missing required one. Query values arrive as strings and are
 * coerced to the declared types, as GitLab's API layer does.
 */

type Schema = Record<string, unknown>;

const int = { type: 'integer' };
const bool = { type: 'boolean' };
const str = { type: 'string' };
const intArray = { type: 'array', items: int };
const dateTime = { type: 'string', format: 'date-time' };

/** `:id`, as sent on the wire: a numeric ID, or a namespaced path with every `/` encoded as %2F. */
const PROJECT_ID = { type: 'string', anyOf: [{ pattern: '^[0-9]+$' }, { pattern: '^[A-Za-z0-9_.-]+(?:%2[Ff][A-Za-z0-9_.-]+)+$' }] };
const PAGINATION = { page: { type: 'integer', minimum: 1 }, per_page: { type: 'integer', minimum: 1, maximum: 100 } };

const LIST_MERGE_REQUESTS_QUERY: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    approved_by_ids: intArray,
    approver_ids: intArray,
    approved: { enum: ['yes', 'no'] },
    assignee_id: int,
    author_id: int,
    author_username: str,
    created_after: dateTime,
    created_before: dateTime,
    environment: str,
    'iids[]': intArray,
    labels: str,
    milestone: str,
    my_reaction_emoji: str,
    order_by: { enum: ['created_at', 'title', 'updated_at'] },
    reviewer_id: int,
    reviewer_username: str,
    scope: { enum: ['created_by_me', 'assigned_to_me', 'all'] },
    search: str,
    sort: { enum: ['asc', 'desc'] },
    source_branch: str,
    state: { enum: ['opened', 'closed', 'locked', 'merged', 'all'] },
    target_branch: str,
    updated_after: dateTime,
    updated_before: dateTime,
    view: { enum: ['simple'] },
    wip: { enum: ['yes', 'no'] },
    with_labels_details: bool,
    with_merge_status_recheck: bool,
    ...PAGINATION,
  },
};

const GET_MERGE_REQUEST_QUERY: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: { include_diverged_commits_count: bool, include_rebase_in_progress: bool, render_html: bool },
};

const CREATE_MERGE_REQUEST_BODY: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['source_branch', 'target_branch', 'title'],
  properties: {
    source_branch: { type: 'string', minLength: 1 },
    target_branch: { type: 'string', minLength: 1 },
    title: { type: 'string', minLength: 1 },
    allow_collaboration: bool,
    approvals_before_merge: int,
    allow_maintainer_to_push: bool,
    assignee_id: int,
    assignee_ids: intArray,
    description: { type: 'string', maxLength: 1_048_576 },
    labels: str,
    milestone_id: int,
    remove_source_branch: bool,
    reviewer_ids: intArray,
    squash: bool,
    squash_on_merge: bool,
    target_project_id: int,
  },
};

const UPDATE_MERGE_REQUEST_BODY: Schema = {
  type: 'object',
  additionalProperties: false,
  // "Must include at least one non-required attribute from above."
  minProperties: 1,
  properties: {
    add_labels: str,
    allow_collaboration: bool,
    allow_maintainer_to_push: bool,
    assignee_id: int,
    assignee_ids: intArray,
    description: { type: 'string', maxLength: 1_048_576 },
    discussion_locked: bool,
    labels: str,
    milestone_id: int,
    remove_labels: str,
    remove_source_branch: bool,
    reviewer_ids: intArray,
    squash: bool,
    squash_on_merge: bool,
    state_event: { enum: ['close', 'reopen'] },
    target_branch: { type: 'string', minLength: 1 },
    title: { type: 'string', minLength: 1 },
  },
};

const LIST_USERS_QUERY: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    username: str,
    search: str,
    active: bool,
    blocked: bool,
    external: bool,
    exclude_internal: bool,
    exclude_external: bool,
    without_project_bots: bool,
    order_by: { enum: ['id', 'name', 'username', 'created_at', 'updated_at'] },
    sort: { enum: ['asc', 'desc'] },
    created_after: dateTime,
    created_before: dateTime,
    ...PAGINATION,
  },
};

const USER: Schema = {
  type: 'object',
  required: ['id', 'username', 'name', 'state', 'avatar_url', 'web_url'],
  properties: { id: int, username: str, name: str, state: str, avatar_url: { type: ['string', 'null'] }, web_url: str },
};

const nullable = (s: Schema): Schema => ({ anyOf: [s, { type: 'null' }] });

/** Merge request attributes every MR endpoint returns (list items and single MRs). */
const MERGE_REQUEST_PROPERTIES: Schema = {
  id: int,
  iid: int,
  project_id: int,
  title: str,
  description: { type: ['string', 'null'] },
  state: { enum: ['opened', 'closed', 'locked', 'merged'] },
  created_at: dateTime,
  updated_at: dateTime,
  merged_by: nullable(USER),
  merge_user: nullable(USER),
  merged_at: nullable(dateTime),
  closed_by: nullable(USER),
  closed_at: nullable(dateTime),
  target_branch: str,
  source_branch: str,
  user_notes_count: int,
  upvotes: int,
  downvotes: int,
  author: USER,
  assignees: { type: 'array', items: USER },
  assignee: nullable(USER),
  reviewers: { type: 'array', items: USER },
  source_project_id: int,
  target_project_id: int,
  labels: { type: 'array', items: str },
  draft: bool,
  work_in_progress: bool,
  milestone: { type: ['object', 'null'] },
  merge_when_pipeline_succeeds: bool,
  merge_status: { enum: ['unchecked', 'checking', 'can_be_merged', 'cannot_be_merged', 'cannot_be_merged_recheck'] },
  detailed_merge_status: str,
  sha: str,
  merge_commit_sha: { type: ['string', 'null'] },
  squash_commit_sha: { type: ['string', 'null'] },
  discussion_locked: { type: ['boolean', 'null'] },
  should_remove_source_branch: { type: ['boolean', 'null'] },
  force_remove_source_branch: bool,
  web_url: str,
  references: { type: 'object', required: ['short', 'relative', 'full'], properties: { short: str, relative: str, full: str } },
  time_stats: { type: 'object', required: ['time_estimate', 'total_time_spent'] },
  squash: bool,
  task_completion_status: { type: 'object', required: ['count', 'completed_count'] },
  has_conflicts: bool,
  blocking_discussions_resolved: bool,
};

const MERGE_REQUEST_IN_LIST: Schema = { type: 'object', required: Object.keys(MERGE_REQUEST_PROPERTIES), properties: MERGE_REQUEST_PROPERTIES };

/** Single MR (GET, POST, PUT): the list attributes plus the ones the "Response" table of "Get single MR" adds. */
const SINGLE_MERGE_REQUEST: Schema = {
  type: 'object',
  required: [...Object.keys(MERGE_REQUEST_PROPERTIES), 'subscribed', 'changes_count', 'diff_refs', 'merge_error', 'first_contribution', 'user'],
  properties: {
    ...MERGE_REQUEST_PROPERTIES,
    subscribed: bool,
    changes_count: { type: ['string', 'null'] },
    latest_build_started_at: nullable(dateTime),
    latest_build_finished_at: nullable(dateTime),
    first_deployed_to_production_at: nullable(dateTime),
    pipeline: { type: ['object', 'null'] },
    head_pipeline: { type: ['object', 'null'] },
    diff_refs: { type: ['object', 'null'] },
    merge_error: { type: ['string', 'null'] },
    first_contribution: bool,
    user: { type: 'object', required: ['can_merge'], properties: { can_merge: bool } },
  },
};

interface RouteSpec {
  name: string;
  method: string;
  /** Path under /api/v4 with `:param` segments. */
  template: string;
  path: Schema;
  query: Schema;
  body?: Schema;
  responses: Record<number, Schema>;
}

const MR_PATH = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: PROJECT_ID } };
const MR_IID_PATH = {
  type: 'object',
  required: ['id', 'merge_request_iid'],
  additionalProperties: false,
  properties: { id: PROJECT_ID, merge_request_iid: { type: 'integer', minimum: 1 } },
};

export const GITLAB_ROUTES: readonly RouteSpec[] = [
  {
    name: 'listProjectMergeRequests',
    method: 'GET',
    template: '/projects/:id/merge_requests',
    path: MR_PATH,
    query: LIST_MERGE_REQUESTS_QUERY,
    responses: { 200: { type: 'array', items: MERGE_REQUEST_IN_LIST } },
  },
  {
    name: 'getMergeRequest',
    method: 'GET',
    template: '/projects/:id/merge_requests/:merge_request_iid',
    path: MR_IID_PATH,
    query: GET_MERGE_REQUEST_QUERY,
    responses: { 200: SINGLE_MERGE_REQUEST },
  },
  {
    name: 'createMergeRequest',
    method: 'POST',
    template: '/projects/:id/merge_requests',
    path: MR_PATH,
    query: { type: 'object', additionalProperties: false },
    body: CREATE_MERGE_REQUEST_BODY,
    responses: { 201: SINGLE_MERGE_REQUEST },
  },
  {
    name: 'updateMergeRequest',
    method: 'PUT',
    template: '/projects/:id/merge_requests/:merge_request_iid',
    path: MR_IID_PATH,
    query: { type: 'object', additionalProperties: false },
    body: UPDATE_MERGE_REQUEST_BODY,
    responses: { 200: SINGLE_MERGE_REQUEST },
  },
  {
    name: 'listUsers',
    method: 'GET',
    template: '/users',
    path: { type: 'object', additionalProperties: false },
    query: LIST_USERS_QUERY,
    responses: { 200: { type: 'array', items: USER } },
  },
];

function formatErrors(prefix: string, errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map(
    (e) => `${prefix}${e.instancePath || ''} ${e.message ?? e.keyword}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`,
  );
}

interface CompiledRoute {
  spec: RouteSpec;
  segments: string[];
  path: ValidateFunction;
  query: ValidateFunction;
  body?: ValidateFunction;
  responses: Map<number, ValidateFunction>;
}

/**
 * Holds requests to {@link GITLAB_ROUTES}: matched by method and raw path segments (so a project path with
 * unencoded slashes matches nothing), path parameters checked as sent (still percent-encoded), query and JSON body
 * against their schemas. Responses are checked against the documented response attributes.
 */
export class GitLabContract implements Contract {
  readonly #routes: CompiledRoute[];

  constructor(readonly prefix = '/api/v4') {
    const coercing = new Ajv({ strict: false, allErrors: true, coerceTypes: 'array' });
    const strict = new Ajv({ strict: false, allErrors: true });
    for (const ajv of [coercing, strict]) ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)) && /T/.test(s));
    this.#routes = GITLAB_ROUTES.map((spec) => ({
      spec,
      segments: `${prefix}${spec.template}`.split('/'),
      path: coercing.compile(spec.path),
      query: coercing.compile(spec.query),
      ...(spec.body ? { body: strict.compile(spec.body) } : {}),
      responses: new Map(Object.entries(spec.responses).map(([status, schema]) => [Number(status), strict.compile(schema)])),
    }));
  }

  validateRequest(req: ContractRequest): Validation {
    const segments = req.path.split('/');
    const byPath = this.#routes.filter((r) => r.segments.length === segments.length && r.segments.every((s, i) => s.startsWith(':') || s === segments[i]));
    if (!byPath.length) return { params: {}, errors: [`no documented endpoint has the path ${req.path}`] };
    const route = byPath.find((r) => r.spec.method === req.method);
    if (!route) return { params: {}, errors: [`${req.method} is not documented for ${byPath[0].spec.template}`] };
    const raw: Record<string, unknown> = {};
    route.segments.forEach((s, i) => {
      if (s.startsWith(':')) raw[s.slice(1)] = segments[i];
    });
    const errors: string[] = [];
    if (!route.path(raw)) errors.push(...formatErrors('path', route.path.errors));
    const query: Record<string, unknown> = {};
    for (const key of new Set(req.query.keys())) {
      const all = req.query.getAll(key);
      query[key] = key.endsWith('[]') || all.length > 1 ? all : all[0];
    }
    if (!route.query(query)) errors.push(...formatErrors('query', route.query.errors));
    if (req.body !== undefined && !route.body) errors.push('the endpoint takes no body');
    if (route.body) {
      if (req.body === undefined) errors.push('request body is required');
      else if (!route.body(req.body)) errors.push(...formatErrors('body', route.body.errors));
    }
    const params = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, safeDecode(String(v))]));
    return { operation: route.spec.name, params, errors: errors.map((e) => `${route.spec.name}: ${e}`) };
  }

  shapeResponse(operation: string, status: number, body: unknown): { body: unknown; errors: string[] } {
    const validate = this.#routes.find((r) => r.spec.name === operation)?.responses.get(status);
    if (!validate) return { body, errors: [`status ${status} is not documented for ${operation}`] };
    return validate(body) ? { body, errors: [] } : { body, errors: formatErrors('', validate.errors) };
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
