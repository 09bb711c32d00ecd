/** The workflow type every coding-agent run executes. */
export const CODING_AGENT_RUN_WORKFLOW = 'codingAgentRun';

/** Business workflow id of a run. */
export function workflowIdForRun(runId: string): string {
  return `coding-run-${runId}`;
}

/** Name of the git branch a run works on. */
export function runBranchName(prefix: string, runId: string): string {
  const p = prefix.trim() === '' ? 'ameide/' : prefix.trim();
  return `${p.endsWith('/') || p.endsWith('-') ? p : p + '/'}run-${runId.slice(0, 8)}`;
}
