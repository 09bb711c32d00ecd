import { create } from '@bufbuild/protobuf';
import { ApplicationFailure } from '@temporalio/common';
import { RecordPullRequestRequestSchema } from '@ameide/contracts';
import { Code, ConnectError, type WorkflowServiceClient } from '@ameide/sdk';
import { DEFAULT_PULL_REQUEST, type CodingRunInput, type PullRequestResult, type RunSummaryResult } from '@ameide/temporal';
import { ForgeError, repositoryFromUrl, upsertPullRequest } from '../forges/index.js';
import { renderPullRequestBody, pullRequestTitle, type PhaseLine } from './pull-request-body.js';
import { secretValue, type SandboxDeps } from './sandboxing.js';
import { normaliseRepoUrl } from './workspace.js';
import { permanent } from './guard.js';

export interface PullRequestDeps extends Pick<SandboxDeps, 'secrets'> {
  api: WorkflowServiceClient;
  /** The forges' fetch (tests point it elsewhere); the global one by default. */
  fetch?: typeof fetch;
}

/** A forge's failure as Temporal should see it: rate limits and 5xx retried (after the wait the forge asked for), the rest final. */
function forgeFailure(err: ForgeError): ApplicationFailure {
  return ApplicationFailure.create({
    type: err.retryable ? 'ForgeUnavailable' : 'PullRequestRefused',
    message: err.message,
    nonRetryable: !err.retryable,
    nextRetryDelay: err.retryAfterSeconds !== undefined ? `${Math.min(err.retryAfterSeconds, 3600)}s` : undefined,
  });
}

/** An API answer that retrying will not change fails the activity for good. */
const PERMANENT = new Set([Code.InvalidArgument, Code.PermissionDenied, Code.Unauthenticated, Code.NotFound, Code.FailedPrecondition]);
function apiFailure(err: unknown, what: string): unknown {
  const e = ConnectError.from(err);
  return PERMANENT.has(e.code) ? permanent('RecordRefused', `${what}: ${e.rawMessage}`) : err;
}

export function createPullRequestActivities(deps: PullRequestDeps) {
  return {
    /**
     * Opens the work branch's pull request, or brings it up to date on a rerun: on the forge the
     * definition names (found again by its head branch), then as the service's record of the branch.
     * With the git provider the record is the pull request.
     */
    async openPullRequest(input: {
      run: CodingRunInput;
      branch: string;
      headCommit: string;
      summary: RunSummaryResult;
      phases: PhaseLine[];
    }): Promise<PullRequestResult> {
      const started = Date.now();
      const { run } = input;
      const settings = run.repo.pullRequest ?? DEFAULT_PULL_REQUEST;
      const base = settings.baseBranch || run.repo.defaultBranch;
      const title = pullRequestTitle(run);
      const body = renderPullRequestBody({ run, summary: input.summary, phases: input.phases });
      let forge: { number: number; url: string; state: PullRequestResult['state']; action: PullRequestResult['action'] } | undefined;
      let repository = normaliseRepoUrl(run.repo.repoUrl);
      if (settings.provider === 'github' || settings.provider === 'gitlab') {
        if (!settings.tokenFromEnv) throw permanent('PullRequestSettings', `pull_request.token_from_env: the ${settings.provider} provider needs a token`);
        const token = secretValue(deps, run, settings.tokenFromEnv, 'pull_request.token_from_env');
        const repo = settings.repository || repositoryFromUrl(run.repo.repoUrl);
        if (!repo) throw permanent('PullRequestSettings', `pull_request.repository: cannot tell the repository from ${run.repo.repoUrl}; set it`);
        repository = repo;
        try {
          forge = await upsertPullRequest(
            {
              provider: settings.provider,
              apiUrl: settings.apiUrl || undefined,
              repository: repo,
              token,
              head: input.branch,
              base,
              title,
              body,
              draft: settings.draft,
              labels: settings.labels,
              reviewers: settings.reviewers,
            },
            { fetch: deps.fetch, userAgent: 'ameide-delivery-automation' },
          );
        } catch (err) {
          if (err instanceof ForgeError) throw forgeFailure(err);
          throw err;
        }
      }
      let recorded;
      try {
        recorded = await deps.api.recordPullRequest(
          create(RecordPullRequestRequestSchema, {
            runId: run.runId,
            provider: settings.provider,
            number: forge?.number ?? 0,
            url: forge?.url ?? '',
            title,
            body,
            baseBranch: base,
            headBranch: input.branch,
            headCommit: input.headCommit,
            state: forge?.state ?? (settings.draft ? 'draft' : 'open'),
            repository,
          }),
        );
      } catch (err) {
        throw apiFailure(err, 'the service did not take the pull request');
      }
      const pr = recorded.pullRequest!;
      return {
        provider: settings.provider,
        number: pr.number,
        url: pr.url,
        state: pr.state as PullRequestResult['state'],
        action: forge?.action ?? (recorded.created ? 'opened' : 'updated'),
        title,
        durationMs: Date.now() - started,
      };
    },
  };
}
