import { DEFAULT_PULL_REQUEST, type PreviewSettings, type PullRequestSettings } from './types.js';

/** A definition's preview as the API's JSON form states it: anything may be missing. */
export interface PreviewInput {
  provider?: string;
  command?: string;
  aliasCommand?: string;
  healthPath?: string;
  readyTimeoutSeconds?: number;
  ttlSeconds?: number;
}

/** A definition's pull request settings as the API's JSON form states them. */
export interface PullRequestInput {
  provider?: string;
  draft?: boolean;
  labels?: string[];
  reviewers?: string[];
  baseBranch?: string;
  tokenFromEnv?: string;
  apiUrl?: string;
  repository?: string;
}

export const DEFAULT_PREVIEW = { healthPath: '/', readyTimeoutSeconds: 120, ttlSeconds: 3600 } as const;

/** The preview a run makes, defaults filled in; undefined when the definition has no preview command. */
export function resolvePreview(p: PreviewInput | undefined): PreviewSettings | undefined {
  if (!p?.command?.trim()) return undefined;
  const path = p.healthPath?.trim() || DEFAULT_PREVIEW.healthPath;
  return {
    provider: p.provider === 'command' ? 'command' : 'local',
    command: p.command,
    aliasCommand: p.aliasCommand ?? '',
    healthPath: path.startsWith('/') ? path : `/${path}`,
    readyTimeoutSeconds: p.readyTimeoutSeconds || DEFAULT_PREVIEW.readyTimeoutSeconds,
    ttlSeconds: p.ttlSeconds || DEFAULT_PREVIEW.ttlSeconds,
  };
}

const PR_PROVIDERS: ReadonlyArray<PullRequestSettings['provider']> = ['git', 'github', 'gitlab', 'none'];

/** The pull request a run opens or updates, defaults filled in: the git provider unless the definition names another. */
export function resolvePullRequest(p: PullRequestInput | undefined): PullRequestSettings {
  const provider = PR_PROVIDERS.find((x) => x === p?.provider) ?? DEFAULT_PULL_REQUEST.provider;
  return {
    provider,
    draft: p?.draft ?? false,
    labels: p?.labels ?? [],
    reviewers: p?.reviewers ?? [],
    baseBranch: p?.baseBranch ?? '',
    tokenFromEnv: p?.tokenFromEnv ?? '',
    apiUrl: p?.apiUrl ?? '',
    repository: p?.repository ?? '',
  };
}
