/**
 * The workflows the worker runs (bundled into Temporal's deterministic sandbox): the coding-agent
 * run (workflow/run.ts, walking the phases of workflow/pipeline.ts) and a run's preview lifetime
 * (workflow/preview-workflow.ts).
 */
export { codingAgentRun, workItemChanged, workItemChanges } from './workflow/run.js';
export { previewLost, previewSuperseded, runPreview } from './workflow/preview-workflow.js';
