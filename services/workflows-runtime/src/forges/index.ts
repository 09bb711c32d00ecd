/**
 * Pull requests on GitHub and merge requests on GitLab: one per piece of work, which every rerun brings up to date
 * (found again by its stored number or by its head branch), reopened if it was closed unmerged, and left alone once
 * merged. Every failure is a {@link ForgeError} with the forge's own message and whether a retry can help; no call
 * is retried here, that is the activity retry policy's job.
 */
import { ForgeError, PROVIDER_NAME, toForgeError } from './errors.js';
import { upsertGitHubPullRequest } from './github.js';
import { upsertGitLabMergeRequest } from './gitlab.js';
import type { PullRequestOutcome, PullRequestRequest, UpsertOptions } from './types.js';

export { ForgeError } from './errors.js';
export { repositoryFromUrl } from './repository.js';
export type { ForgeProvider, PullRequestOutcome, PullRequestRequest } from './types.js';

/** Creates, updates or reopens the pull request (merge request) of `req.head`; see {@link PullRequestOutcome.action}. */
export async function upsertPullRequest(req: PullRequestRequest, opts?: { fetch?: typeof fetch; userAgent?: string }): Promise<PullRequestOutcome> {
  const provider = req.provider;
  if (provider !== 'github' && provider !== 'gitlab') {
    throw new ForgeError(provider, `unknown forge provider "${String(provider)}"`, { retryable: false });
  }
  const missing = (['repository', 'token', 'head', 'base', 'title'] as const).filter((k) => typeof req[k] !== 'string' || !req[k].trim());
  if (missing.length) {
    throw new ForgeError(provider, `${PROVIDER_NAME[provider]}: missing ${missing.join(', ')}`, { retryable: false });
  }
  if (req.knownNumber !== undefined && !(Number.isInteger(req.knownNumber) && req.knownNumber > 0)) {
    throw new ForgeError(provider, `${PROVIDER_NAME[provider]}: knownNumber must be a positive integer, got ${req.knownNumber}`, { retryable: false });
  }
  const options: UpsertOptions = opts ?? {};
  try {
    return provider === 'github' ? await upsertGitHubPullRequest(req, options) : await upsertGitLabMergeRequest(req, options);
  } catch (err) {
    throw toForgeError(provider, err, req.token);
  }
}
