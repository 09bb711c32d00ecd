import { createHash } from 'node:crypto';
import { FakeForge, type ContractRequest, type ForgeBehaviour, type Reply } from './fake-server.js';
import { GitLabContract } from './gitlab-contract.js';

export interface FakeUser {
  id: number;
  username: string;
}

export interface FakeMergeRequest {
  iid: number;
  title: string;
  description: string;
  state: 'opened' | 'closed' | 'locked' | 'merged';
  source: string;
  target: string;
  labels: string[];
  reviewerIds: number[];
  authorId: number;
  /** The project the source branch lives in (a fork's id for a merge request from a fork). */
  sourceProjectId: number;
  /** GitLab cannot reopen it (its source branch was deleted and pushed again): reopen leaves it closed, silently. */
  unreopenable: boolean;
  createdAt: number;
}

const DRAFT = /^\s*(?:\[draft\]|\(draft\)|draft\s*:|draft\s+-)/i;
const sha = (s: string): string => createHash('sha1').update(s).digest('hex');
const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * GitLab's REST API v4 for the merge-request and user endpoints the provider uses, with state in memory. Answers
 * the way GitLab does: 409 "Another open merge request already exists for this source branch", 422 for a branch
 * conflict, 401 "401 Unauthorized", 404 "404 Not found", drafts by title prefix, add_labels, reviewer_ids replacing
 * the reviewer set, state_event reopen (silently not reopening what cannot be). Every request is held to
 * {@link GitLabContract} by {@link FakeForge}.
 */
export class FakeGitLab implements ForgeBehaviour {
  readonly projectId = 42;
  readonly projectPath = 'acme/platform/widgets';
  readonly users: FakeUser[] = [
    { id: 7, username: 'ameide-bot' },
    { id: 11, username: 'alice' },
    { id: 12, username: 'bob' },
    { id: 13, username: 'carol' },
  ];
  readonly mergeRequests = new Map<number, FakeMergeRequest>();
  readonly server: FakeForge;
  #next = 1;
  #clock = Date.parse('2026-03-01T10:00:00Z');

  constructor(readonly token: string) {
    this.server = new FakeForge(new GitLabContract(), this, 'GitLab');
  }

  /** The API URL as the provider takes it. */
  get apiUrl(): string {
    return `${this.server.url}/api/v4`;
  }

  async start(): Promise<this> {
    await this.server.start();
    return this;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  seed(m: Partial<FakeMergeRequest> & Pick<FakeMergeRequest, 'source'>): FakeMergeRequest {
    const mr: FakeMergeRequest = {
      iid: this.#next++,
      title: 'Earlier title',
      description: 'Earlier description',
      state: 'opened',
      target: 'main',
      labels: [],
      reviewerIds: [],
      authorId: 7,
      sourceProjectId: this.projectId,
      unreopenable: false,
      createdAt: (this.#clock += 1000),
      ...m,
    };
    if (m.iid !== undefined) this.#next = Math.max(this.#next, m.iid + 1);
    this.mergeRequests.set(mr.iid, mr);
    return mr;
  }

  headers(): Record<string, string> {
    return { 'ratelimit-limit': '2000', 'ratelimit-remaining': '1999', 'ratelimit-reset': '1900000000', 'x-request-id': 'fake-0001' };
  }

  authorize(req: ContractRequest): Reply | undefined {
    if (req.headers['private-token'] === this.token || req.headers.authorization === `Bearer ${this.token}`) return undefined;
    return { status: 401, body: { message: '401 Unauthorized' } };
  }

  #user(id: number): Record<string, unknown> {
    const u = this.users.find((x) => x.id === id) ?? { id, username: `user${id}` };
    return { id: u.id, username: u.username, name: u.username, state: 'active', avatar_url: null, web_url: `https://gitlab.example/${u.username}` };
  }

  /** A merge request as GitLab returns it; `single` adds the attributes of the single-MR endpoints. */
  json(m: FakeMergeRequest, single: boolean): Record<string, unknown> {
    const draft = DRAFT.test(m.title);
    const base: Record<string, unknown> = {
      id: 1000 + m.iid,
      iid: m.iid,
      project_id: this.projectId,
      title: m.title,
      description: m.description,
      state: m.state,
      created_at: iso(m.createdAt),
      updated_at: iso(m.createdAt),
      merged_by: m.state === 'merged' ? this.#user(11) : null,
      merge_user: m.state === 'merged' ? this.#user(11) : null,
      merged_at: m.state === 'merged' ? iso(m.createdAt + 1000) : null,
      closed_by: m.state === 'closed' ? this.#user(11) : null,
      closed_at: m.state === 'closed' ? iso(m.createdAt + 1000) : null,
      target_branch: m.target,
      source_branch: m.source,
      user_notes_count: 0,
      upvotes: 0,
      downvotes: 0,
      author: this.#user(m.authorId),
      assignees: [],
      assignee: null,
      reviewers: m.reviewerIds.map((id) => this.#user(id)),
      source_project_id: m.sourceProjectId,
      target_project_id: this.projectId,
      labels: [...m.labels],
      draft,
      work_in_progress: draft,
      milestone: null,
      merge_when_pipeline_succeeds: false,
      merge_status: 'can_be_merged',
      detailed_merge_status: m.state === 'opened' ? (draft ? 'draft_status' : 'mergeable') : 'not_open',
      sha: sha(m.source),
      merge_commit_sha: m.state === 'merged' ? sha(`merge ${m.iid}`) : null,
      squash_commit_sha: null,
      discussion_locked: null,
      should_remove_source_branch: null,
      force_remove_source_branch: true,
      web_url: `https://gitlab.example/${this.projectPath}/-/merge_requests/${m.iid}`,
      references: { short: `!${m.iid}`, relative: `!${m.iid}`, full: `${this.projectPath}!${m.iid}` },
      time_stats: { time_estimate: 0, total_time_spent: 0, human_time_estimate: null, human_total_time_spent: null },
      squash: false,
      task_completion_status: { count: 0, completed_count: 0 },
      has_conflicts: false,
      blocking_discussions_resolved: true,
    };
    if (!single) return base;
    return {
      ...base,
      subscribed: true,
      changes_count: '1',
      latest_build_started_at: null,
      latest_build_finished_at: null,
      first_deployed_to_production_at: null,
      pipeline: null,
      head_pipeline: null,
      diff_refs: { base_sha: sha(m.target), head_sha: sha(m.source), start_sha: sha(m.target) },
      merge_error: null,
      first_contribution: false,
      user: { can_merge: true },
    };
  }

  /** The open merge request of the same source branch of this project (not a fork's) into the same target. */
  #openFor(source: string, target: string, except?: number): FakeMergeRequest | undefined {
    return [...this.mergeRequests.values()].find(
      (m) => m.state === 'opened' && m.sourceProjectId === this.projectId && m.source === source && m.target === target && m.iid !== except,
    );
  }

  handle(operation: string, params: Record<string, string>, req: ContractRequest): Reply | undefined {
    if (operation === 'listUsers') {
      const username = req.query.get('username');
      const found = this.users.filter((u) => username === null || u.username.toLowerCase() === username.toLowerCase());
      return { status: 200, body: found.map((u) => this.#user(u.id)) };
    }
    if (params.id !== this.projectPath && params.id !== String(this.projectId)) return { status: 404, body: { message: '404 Project Not Found' } };
    const body = (req.body ?? {}) as Record<string, unknown>;
    const mr = this.mergeRequests.get(Number(params.merge_request_iid));
    switch (operation) {
      case 'listProjectMergeRequests': {
        const q = req.query;
        const state = q.get('state') ?? 'all';
        let list = [...this.mergeRequests.values()].filter((m) => state === 'all' || m.state === state);
        if (q.get('source_branch')) list = list.filter((m) => m.source === q.get('source_branch'));
        if (q.get('target_branch')) list = list.filter((m) => m.target === q.get('target_branch'));
        list.sort((a, b) => (q.get('sort') === 'asc' ? a.createdAt - b.createdAt : b.createdAt - a.createdAt));
        const perPage = Number(q.get('per_page') ?? 20);
        const page = Number(q.get('page') ?? 1);
        const headers = { 'x-total': String(list.length), 'x-page': String(page), 'x-per-page': String(perPage) };
        return { status: 200, headers, body: list.slice((page - 1) * perPage, page * perPage).map((m) => this.json(m, false)) };
      }
      case 'getMergeRequest':
        return mr ? { status: 200, body: this.json(mr, true) } : { status: 404, body: { message: '404 Not found' } };
      case 'createMergeRequest': {
        const source = String(body.source_branch);
        const target = String(body.target_branch);
        if (source === target) return { status: 422, body: { message: ["You can't use same project/branch for source and target"] } };
        const open = this.#openFor(source, target);
        if (open) return { status: 409, body: { message: [`Another open merge request already exists for this source branch: !${open.iid}`] } };
        const created = this.seed({
          source,
          target,
          title: String(body.title),
          description: typeof body.description === 'string' ? body.description : '',
          labels: typeof body.labels === 'string' ? splitLabels(body.labels) : [],
          reviewerIds: (body.reviewer_ids as number[] | undefined) ?? [],
        });
        return { status: 201, body: this.json(created, true) };
      }
      case 'updateMergeRequest': {
        if (!mr) return { status: 404, body: { message: '404 Not found' } };
        if (typeof body.target_branch === 'string' && body.target_branch === mr.source) {
          return { status: 422, body: { message: ["You can't use same project/branch for source and target"] } };
        }
        if (typeof body.title === 'string') mr.title = body.title;
        if (typeof body.description === 'string') mr.description = body.description;
        if (typeof body.target_branch === 'string') mr.target = body.target_branch;
        if (typeof body.labels === 'string') mr.labels = splitLabels(body.labels);
        if (typeof body.add_labels === 'string') for (const l of splitLabels(body.add_labels)) if (!mr.labels.includes(l)) mr.labels.push(l);
        if (typeof body.remove_labels === 'string') mr.labels = mr.labels.filter((l) => !splitLabels(body.remove_labels as string).includes(l));
        if (Array.isArray(body.reviewer_ids)) mr.reviewerIds = (body.reviewer_ids as number[]).filter((id) => id !== 0);
        if (body.state_event === 'close' && mr.state === 'opened') mr.state = 'closed';
        // GitLab's state machine refuses silently: the answer is 200 with the merge request still closed.
        if (body.state_event === 'reopen' && mr.state === 'closed' && !mr.unreopenable) mr.state = 'opened';
        return { status: 200, body: this.json(mr, true) };
      }
      default:
        return undefined;
    }
  }
}

function splitLabels(s: string): string[] {
  return s
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean);
}
