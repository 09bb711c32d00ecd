import type { CodingRunInput, FollowupInput } from '@ameide/temporal';

/**
 * Temporal user metadata (the static summary and details the Web UI shows in the workflow list and
 * on a workflow's page), so a run reads as its work rather than as `coding-run-<uuid>`.
 */
export interface WorkflowMetadata {
  staticSummary: string;
  staticDetails: string;
}

/** Well below what Temporal accepts for a summary (a single line) and for details. */
const SUMMARY_CHARS = 200;
const DETAILS_CHARS = 16_000;

/** One line: whitespace (newlines included) collapsed, cut with an ellipsis. */
function oneLine(s: string, max = SUMMARY_CHARS): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

const code = (s: string) => `\`${oneLine(s).replace(/`/g, "'")}\``;

/**
 * `CALC-1 Add a multiply function · sample, manual` (more work items: `(+2 more)`; none: the plan),
 * and the run's ids, definition, trigger and methodology as details.
 */
export function runMetadata(input: CodingRunInput): WorkflowMetadata {
  const [first, ...rest] = input.workItems;
  const work = first ? `${first.id} ${first.title}${rest.length ? ` (+${rest.length} more)` : ''}` : `plan ${input.planId.slice(0, 8)}`;
  const m = input.methodology;
  const lines = [
    `- run: ${code(input.runId)}`,
    `- definition: ${code(input.definitionName)} (${code(input.definitionId)})`,
    `- plan: ${code(input.planId)} (version ${input.planVersion})`,
    `- trigger: ${input.trigger}`,
    ...(m.profile ? [`- profile: ${oneLine(m.profile)}`] : []),
    ...(m.timeboxIds.length ? [`- timeboxes: ${m.timeboxIds.map((t) => oneLine(t)).join(', ')}`] : []),
    ...(m.goalIds.length ? [`- goals: ${m.goalIds.map((g) => oneLine(g)).join(', ')}`] : []),
    ...(input.previousAttempt ? [`- rerun of: ${code(input.previousAttempt.runId)}`] : []),
  ];
  if (input.workItems.length) lines.push('', '**Work items**', '', ...input.workItems.map((w) => `- ${oneLine(w.id)}: ${oneLine(w.title)}`));
  const details = lines.join('\n');
  return {
    staticSummary: oneLine(`${work} · ${input.definitionName}, ${input.trigger}`),
    staticDetails: details.length > DETAILS_CHARS ? `${details.slice(0, DETAILS_CHARS - 1)}…` : details,
  };
}

/** `finalize run 3f2a9c01 (CALC-1)`, `announce preview of run 3f2a9c01 (CALC-1)`. */
export function followupMetadata(input: FollowupInput, workItemIds: readonly string[] = []): WorkflowMetadata {
  const what = input.event === 'finished' ? 'finalize run' : 'announce preview of run';
  const items = workItemIds.length ? ` (${workItemIds.join(', ')})` : '';
  const does =
    input.event === 'finished'
      ? 'what follows the end of the run: evidence, attestations, the Definition of Done, impediments, notifications'
      : "notifies who follows the run's work that its preview is live";
  return {
    staticSummary: oneLine(`${what} ${input.runId.slice(0, 8)}${items}`),
    staticDetails: [`- run: ${code(input.runId)}`, ...(workItemIds.length ? [`- work items: ${workItemIds.join(', ')}`] : []), `- ${does}`].join('\n'),
  };
}
