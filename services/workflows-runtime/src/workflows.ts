/**
 * The workflows the worker runs (bundled into Temporal's deterministic sandbox): the coding-agent
 * run (workflow/run.ts, walking the phases of workflow/pipeline.ts), a run's preview lifetime
 * (workflow/preview-workflow.ts) and what follows a run's events (workflow/followup.ts, whose
 * activities the workflow service serves), and a worker's warm-up as it starts (workflow/warm-up.ts).
 */
export { codingAgentRun, workItemChanged, workItemChanges } from './workflow/run.js';
export { previewLost, previewSuperseded, runPreview } from './workflow/preview-workflow.js';
export { runFollowup } from './workflow/followup.js';
export { workerWarmUp } from './workflow/warm-up.js';
