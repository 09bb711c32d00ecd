import type { RunRow } from '@ameide/db';
import type { FollowupEvent } from '@ameide/temporal';
import type { NotificationContent, NotificationEvent } from './content.js';

/** A run's impediment as its notifications show it. */
export type ImpedimentFacts = NonNullable<NotificationContent['impediment']>;

/** What a run's notifications are made from, read from the database. */
export interface RunFacts {
  run: RunRow;
  /** The work item's title (from the backlog, else from the run's plan); empty without one. */
  title: string;
  evidence: NotificationContent['evidence'];
  impediment?: ImpedimentFacts;
  /** The run's preview URLs, when it has a preview. */
  preview?: { url: string; aliasUrl: string };
  /** When the preview went live (for `preview_live`). */
  previewLiveAt?: Date;
  /** The configured public URL links point under. */
  publicUrl: string;
}

/** `RUN_STATUS_HANDED_OFF` → `handed_off`. */
export function statusName(status: string): string {
  return status.replace(/^RUN_STATUS_/, '').toLowerCase();
}

/**
 * The notification events of a follow-up of a run. `finished`: the run's outcome (`run_completed`
 * when it completed meeting its Definition of Done or without one, `dod_failed` when it completed
 * without meeting it, `run_failed` when it failed or was handed off, `run_cancelled`), and
 * `impediment_raised` when the run raised an impediment. `preview_live`: `preview_live` when the
 * run's preview has a URL. Undefined when the run has not finished (there is nothing to say yet).
 */
export function eventsOf(followup: FollowupEvent, facts: Pick<RunFacts, 'run' | 'impediment' | 'preview'>): NotificationEvent[] | undefined {
  if (followup === 'preview_live') return facts.preview?.url ? ['preview_live'] : [];
  const events: NotificationEvent[] = [];
  switch (facts.run.status) {
    case 'RUN_STATUS_COMPLETED':
      events.push(facts.run.state.done?.met === false ? 'dod_failed' : 'run_completed');
      break;
    case 'RUN_STATUS_FAILED':
    case 'RUN_STATUS_HANDED_OFF':
      events.push('run_failed');
      break;
    case 'RUN_STATUS_CANCELLED':
      events.push('run_cancelled');
      break;
    default:
      return undefined;
  }
  if (facts.impediment) events.push('impediment_raised');
  return events;
}

/** The link to a run under the public URL. */
export function runLink(publicUrl: string, runId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/runs/${runId}`;
}

/** What a notification of `event` says about the run of `facts` (the same for every person). */
export function composeContent(event: NotificationEvent, facts: RunFacts): NotificationContent {
  const { run } = facts;
  const summary = run.state.summary ?? {};
  const report = summary.testReport;
  const pr = summary.pullRequest;
  const done = run.state.done;
  const occurred = event === 'preview_live' ? (facts.previewLiveAt ?? run.startedAt) : (run.finishedAt ?? undefined);
  const content: NotificationContent = {
    event,
    tenantId: run.tenantId,
    occurredAt: occurred ? occurred.toISOString() : undefined,
    run: {
      id: run.id,
      status: statusName(run.status),
      definition: run.spec.definitionName,
      workItemId: run.spec.workItemIds[0] ?? '',
      title: facts.title,
      branch: summary.branch ?? '',
      error: run.state.error || undefined,
      baseCommit: summary.baseCommit || undefined,
      headCommit: summary.headCommit || undefined,
      filesChanged: summary.filesChanged,
      insertions: summary.insertions,
      deletions: summary.deletions,
      tests: report
        ? { passed: report.passed ?? 0, failed: report.failed ?? 0, skipped: report.skipped ?? 0, failingTests: [...(report.failingTests ?? [])] }
        : undefined,
      pullRequest: pr ? { provider: pr.provider ?? '', number: pr.number ?? 0, url: pr.url ?? '', state: pr.state ?? '' } : undefined,
      handoffUri: summary.handoffUri || undefined,
      durationMs: run.startedAt && run.finishedAt ? Math.max(0, run.finishedAt.getTime() - run.startedAt.getTime()) : undefined,
    },
    preview: facts.preview?.url ? { url: facts.preview.url, aliasUrl: facts.preview.aliasUrl } : undefined,
    dod:
      done && typeof done.met === 'boolean'
        ? { met: done.met, rules: (done.rules ?? []).map((r) => ({ rule: r.rule ?? '', passed: r.passed ?? false, detail: r.detail ?? '' })) }
        : undefined,
    evidence: facts.evidence,
    impediment: facts.impediment,
    links: { run: runLink(facts.publicUrl, run.id) },
  };
  for (const key of Object.keys(content.run) as (keyof NotificationContent['run'])[]) if (content.run[key] === undefined) delete content.run[key];
  for (const key of ['occurredAt', 'preview', 'dod', 'impediment'] as const) if (content[key] === undefined) delete content[key];
  return content;
}
