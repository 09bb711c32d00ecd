/** The code hosts a pull request can be opened on. */
export type ForgeProvider = 'github' | 'gitlab';

/** What to open (or bring up to date) on the forge: one pull request per piece of work, which every rerun updates. */
export interface PullRequestRequest {
  provider: ForgeProvider;
  /** API base URL: default https://api.github.com or https://gitlab.com/api/v4 (GitHub Enterprise / self-managed GitLab set it). */
  apiUrl?: string;
  /** "owner/name" (GitHub) or "group/subgroup/project" (GitLab). */
  repository: string;
  token: string;
  /** The work branch, e.g. "ameide/wi-42". */
  head: string;
  /** The branch to merge into, e.g. "main". */
  base: string;
  title: string;
  body: string;
  /** Open as a draft. Applies when the pull request is created; an existing one keeps its draft state (a person may have marked it ready). */
  draft: boolean;
  /** Added to the pull request; labels already on it (also ones people added) stay. */
  labels: string[];
  /** GitHub logins / GitLab usernames; requested in addition to the reviewers already on it. */
  reviewers: string[];
  /** The number stored from an earlier run of the same work, if any: looked up first. */
  knownNumber?: number;
}

export interface PullRequestOutcome {
  provider: ForgeProvider;
  /** GitHub PR number / GitLab MR iid. */
  number: number;
  /** html_url / web_url. */
  url: string;
  state: 'open' | 'draft' | 'closed' | 'merged';
  /** What this call did: created a new PR, updated the existing open one, reopened a closed-unmerged one, or found it merged (left alone). */
  action: 'opened' | 'updated' | 'reopened' | 'merged';
  headCommit?: string;
}

export interface UpsertOptions {
  /** The fetch both clients use (default: the global one). Bind a cancellation signal here if the caller has one. */
  fetch?: typeof fetch;
  userAgent?: string;
}
