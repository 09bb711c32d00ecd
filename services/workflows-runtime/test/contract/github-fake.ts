import { createHash } from 'node:crypto';
import { FakeForge, type ContractRequest, type ForgeBehaviour, type Reply } from './fake-server.js';
import type { OpenApiContract } from './openapi.js';

export interface FakePull {
  number: number;
  title: string;
  body: string;
  state: 'open' | 'closed';
  draft: boolean;
  merged: boolean;
  head: string;
  base: string;
  labels: string[];
  /** Logins whose review is requested (GitHub drops a login from this list once they review). */
  reviewers: string[];
  author: string;
  /** The head branch was force-pushed since the pull request was closed: GitHub will not reopen it. */
  forcePushed: boolean;
  createdAt: number;
}

const DOCS = 'https://docs.github.com/rest';
const sha = (s: string): string => createHash('sha1').update(s).digest('hex');
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * GitHub's REST API for the pull-request endpoints the provider uses, with state in memory: repositories' branches,
 * pull requests, their labels and requested reviewers. Answers the way GitHub does, including its errors ("Validation
 * Failed" with errors[], "A pull request already exists", "Bad credentials", "Reviews may only be requested from
 * collaborators"). Every request is held to GitHub's OpenAPI description by {@link FakeForge}.
 */
export class FakeGitHub implements ForgeBehaviour {
  readonly owner = 'acme';
  readonly repo = 'widgets';
  /** The login the token belongs to: the author of the pull requests it opens. */
  readonly login = 'ameide-bot';
  readonly pulls = new Map<number, FakePull>();
  /** Branch → number of commits ahead of main (0: "No commits between"). */
  readonly branches = new Map<string, number>([['main', 0]]);
  readonly collaborators = new Set(['alice', 'bob', 'carol', 'ameide-bot']);
  readonly server: FakeForge;
  #next = 1;
  #clock = Date.parse('2026-03-01T10:00:00Z');

  constructor(
    contract: OpenApiContract,
    readonly token: string,
  ) {
    this.server = new FakeForge(contract, this, 'GitHub');
  }

  get url(): string {
    return this.server.url;
  }

  async start(): Promise<this> {
    await this.server.start();
    return this;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** A pull request that exists before the test's call. */
  seed(p: Partial<FakePull> & Pick<FakePull, 'head'>): FakePull {
    if (!this.branches.has(p.head)) this.branches.set(p.head, 1);
    const pull: FakePull = {
      number: this.#next++,
      title: 'Earlier title',
      body: 'Earlier body',
      state: 'open',
      draft: false,
      merged: false,
      base: 'main',
      labels: [],
      reviewers: [],
      author: this.login,
      forcePushed: false,
      createdAt: (this.#clock += 1000),
      ...p,
    };
    if (p.number !== undefined) this.#next = Math.max(this.#next, p.number + 1);
    this.pulls.set(pull.number, pull);
    return pull;
  }

  headers(): Record<string, string> {
    return { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999', 'x-ratelimit-reset': '1900000000', 'x-github-request-id': 'FAKE:0001' };
  }

  authorize(req: ContractRequest): Reply | undefined {
    const auth = String(req.headers.authorization ?? '');
    if (auth === `token ${this.token}` || auth === `bearer ${this.token}` || auth === `Bearer ${this.token}`) return undefined;
    return { status: 401, body: { message: 'Bad credentials', documentation_url: DOCS, status: '401' } };
  }

  #user(login: string): Record<string, unknown> {
    return { login, id: 1000 + login.length, node_id: `U_${login}`, type: 'User', html_url: `https://github.example/${login}`, site_admin: false };
  }

  #repository(): Record<string, unknown> {
    return {
      id: 77,
      name: this.repo,
      full_name: `${this.owner}/${this.repo}`,
      owner: this.#user(this.owner),
      private: true,
      html_url: `https://github.example/${this.owner}/${this.repo}`,
      default_branch: 'main',
    };
  }

  #label(name: string): Record<string, unknown> {
    return {
      id: 500 + name.length,
      node_id: `L_${name}`,
      name,
      color: 'ededed',
      default: false,
      description: `The ${name} label`,
      url: `${this.url}/repos/${this.owner}/${this.repo}/labels/${encodeURIComponent(name)}`,
    };
  }

  /** The pull request as GitHub returns it; the fake-server fills the remaining required fields from the schema. */
  json(p: FakePull): Record<string, unknown> {
    const api = `${this.url}/repos/${this.owner}/${this.repo}`;
    const ref = (branch: string): Record<string, unknown> => ({
      label: `${this.owner}:${branch}`,
      ref: branch,
      sha: sha(branch),
      user: this.#user(this.owner),
      repo: this.#repository(),
    });
    return {
      url: `${api}/pulls/${p.number}`,
      id: 9000 + p.number,
      node_id: `PR_${p.number}`,
      html_url: `https://github.example/${this.owner}/${this.repo}/pull/${p.number}`,
      number: p.number,
      state: p.state,
      locked: false,
      title: p.title,
      body: p.body,
      draft: p.draft,
      user: this.#user(p.author),
      labels: p.labels.map((l) => this.#label(l)),
      requested_reviewers: p.reviewers.map((r) => this.#user(r)),
      requested_teams: [],
      assignees: [],
      head: ref(p.head),
      base: ref(p.base),
      created_at: iso(p.createdAt),
      updated_at: iso(p.createdAt),
      closed_at: p.state === 'closed' ? iso(p.createdAt + 1000) : null,
      merged_at: p.merged ? iso(p.createdAt + 1000) : null,
      merge_commit_sha: p.merged ? sha(`merge ${p.number}`) : null,
      merged: p.merged,
      mergeable: null,
      author_association: 'MEMBER',
    };
  }

  #validationFailed(errors: Array<Record<string, string>>): Reply {
    return { status: 422, body: { message: 'Validation Failed', errors, documentation_url: `${DOCS}/pulls/pulls` } };
  }

  #notFound(): Reply {
    return { status: 404, body: { message: 'Not Found', documentation_url: DOCS, status: '404' } };
  }

  #openFor(head: string, base: string, except?: number): FakePull | undefined {
    return [...this.pulls.values()].find((p) => p.state === 'open' && p.head === head && p.base === base && p.number !== except);
  }

  handle(operation: string, params: Record<string, string>, req: ContractRequest): Reply | undefined {
    if (params.owner !== this.owner || params.repo !== this.repo) return this.#notFound();
    const body = (req.body ?? {}) as Record<string, unknown>;
    const number = Number(params.pull_number ?? params.issue_number);
    const pull = this.pulls.get(number);
    switch (operation) {
      case 'pulls/list': {
        const state = req.query.get('state') ?? 'open';
        const head = req.query.get('head');
        const base = req.query.get('base');
        const direction = req.query.get('direction') ?? 'desc';
        let list = [...this.pulls.values()].filter((p) => state === 'all' || p.state === state);
        if (head) {
          const [owner, branch] = head.includes(':') ? head.split(/:(.*)/s) : [head, undefined];
          list = list.filter((p) => owner === this.owner && (branch === undefined || p.head === branch));
        }
        if (base) list = list.filter((p) => p.base === base);
        list.sort((a, b) => (direction === 'asc' ? a.createdAt - b.createdAt : b.createdAt - a.createdAt));
        const perPage = Number(req.query.get('per_page') ?? 30);
        const page = Number(req.query.get('page') ?? 1);
        return { status: 200, body: list.slice((page - 1) * perPage, page * perPage).map((p) => this.json(p)) };
      }
      case 'pulls/get':
        return pull ? { status: 200, body: this.json(pull) } : this.#notFound();
      case 'pulls/create': {
        const head = String(body.head);
        const base = String(body.base);
        if (!this.branches.has(head)) return this.#validationFailed([{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
        if (!this.branches.has(base)) return this.#validationFailed([{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
        if (this.branches.get(head) === 0)
          return this.#validationFailed([{ resource: 'PullRequest', code: 'custom', message: `No commits between ${base} and ${head}` }]);
        if (this.#openFor(head, base))
          return this.#validationFailed([{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${this.owner}:${head}.` }]);
        const created = this.seed({ head, base, title: String(body.title), body: String(body.body ?? ''), draft: body.draft === true });
        return { status: 201, body: this.json(created) };
      }
      case 'pulls/update': {
        if (!pull) return this.#notFound();
        if (body.state === 'open' && pull.state === 'closed') {
          if (pull.merged)
            return this.#validationFailed([
              { resource: 'PullRequest', code: 'custom', field: 'state', message: 'state cannot be changed. The pull request has been merged.' },
            ]);
          if (pull.forcePushed) {
            return this.#validationFailed([
              {
                resource: 'PullRequest',
                code: 'custom',
                field: 'state',
                message: `state cannot be changed. The ${pull.head} branch was force-pushed or recreated.`,
              },
            ]);
          }
          if (this.#openFor(pull.head, String(body.base ?? pull.base), pull.number)) {
            return this.#validationFailed([
              { resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${this.owner}:${pull.head}.` },
            ]);
          }
        }
        if (typeof body.base === 'string' && !this.branches.has(body.base))
          return this.#validationFailed([{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
        if (typeof body.title === 'string') pull.title = body.title;
        if (typeof body.body === 'string') pull.body = body.body;
        if (typeof body.base === 'string') pull.base = body.base;
        if (body.state === 'open' || body.state === 'closed') pull.state = body.state;
        return { status: 200, body: this.json(pull) };
      }
      case 'issues/add-labels': {
        if (!pull) return this.#notFound();
        const wanted = (body.labels as Array<string | { name: string }>).map((l) => (typeof l === 'string' ? l : l.name));
        for (const l of wanted) if (!pull.labels.some((x) => x.toLowerCase() === l.toLowerCase())) pull.labels.push(l);
        return { status: 200, body: pull.labels.map((l) => this.#label(l)) };
      }
      case 'pulls/request-reviewers': {
        if (!pull) return this.#notFound();
        const wanted = (body.reviewers as string[] | undefined) ?? [];
        if (wanted.some((r) => r.toLowerCase() === pull.author.toLowerCase())) {
          return { status: 422, body: { message: 'Review cannot be requested from pull request author.', documentation_url: DOCS } };
        }
        if (wanted.some((r) => !this.collaborators.has(r.toLowerCase()))) {
          return {
            status: 422,
            body: {
              message: `Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the ${this.owner}/${this.repo} repository.`,
              documentation_url: DOCS,
            },
          };
        }
        for (const r of wanted) if (!pull.reviewers.includes(r)) pull.reviewers.push(r);
        return { status: 201, body: this.json(pull) };
      }
      default:
        return undefined;
    }
  }
}
