/** The workflow type every coding-agent run executes. */
export const CODING_AGENT_RUN_WORKFLOW = 'codingAgentRun';

/** Business workflow id of a run. */
export function workflowIdForRun(runId: string): string {
  return `coding-run-${runId}`;
}

/**
 * The git branch for a piece of work: named after the plan's first work item (or the plan when it has
 * none), so every rerun of the same work updates the same branch instead of opening another.
 */
export function workBranchName(prefix: string, workItemId: string | undefined, planId: string): string {
  const p = prefix.trim() === '' ? 'ameide/' : prefix.trim();
  const slug = workItemId
    ?.toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .replace(/\.{2,}/g, '.')
    .slice(0, 60);
  return `${p.endsWith('/') || p.endsWith('-') ? p : p + '/'}${slug || `plan-${planId.slice(0, 8)}`}`;
}

/** Signal a run's workflow receives when its work item changes in the backlog (WorkItemChange). */
export const WORK_ITEM_CHANGED_SIGNAL = 'workItemChanged';
/** Query that returns the WorkItemChange list a run's workflow received. */
export const WORK_ITEM_CHANGES_QUERY = 'workItemChanges';

/** The workflow that keeps a run's local preview until it expires or is superseded. */
export const RUN_PREVIEW_WORKFLOW = 'runPreview';

/** Workflow id of a run's preview workflow: one per run, so it starts once. */
export function previewWorkflowId(runId: string): string {
  return `preview-${runId}`;
}

/** Signal to a preview workflow: a newer preview of the same work item is live. */
export const PREVIEW_SUPERSEDED_SIGNAL = 'previewSuperseded';
/** Signal to a preview workflow: its process is gone (e.g. its worker restarted); it unregisters and ends. */
export const PREVIEW_LOST_SIGNAL = 'previewLost';
