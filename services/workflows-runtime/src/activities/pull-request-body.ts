import type { CodingRunInput, PhaseName, PhaseStateName, RunSummaryResult } from '@ameide/temporal';

/** A phase as the run recorded it so far. */
export interface PhaseLine {
  phase: PhaseName;
  state: PhaseStateName;
  durationMs?: number;
  exitCode?: number;
  message?: string;
}

/** The pull request's title: the work item, or the run when there is none. */
export function pullRequestTitle(run: CodingRunInput): string {
  const item = run.workItems[0];
  return item ? `${item.id}: ${item.title}`.slice(0, 250) : `${run.definitionName}: run ${run.runId.slice(0, 8)}`;
}

const seconds = (ms?: number) => (ms === undefined ? '' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
/** Table cells hold no pipes or newlines. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

/**
 * The pull request's description, the same on every provider: the work item and its acceptance
 * criteria, the phases with durations, the test outcome, the preview, the diff stats and the run.
 * Rendered from the run alone, so a retried or repeated call writes the same text.
 */
export function renderPullRequestBody(input: { run: CodingRunInput; summary: RunSummaryResult; phases: PhaseLine[]; runLink?: string }): string {
  const { run, summary } = input;
  const out: string[] = [];
  for (const item of run.workItems) {
    out.push(`## ${item.id}: ${item.title}`, '');
    if (item.description.trim()) out.push(item.description.trim(), '');
    if (item.acceptanceCriteria.length) {
      out.push('**Acceptance criteria**', '', ...item.acceptanceCriteria.map((c) => `- [ ] ${c}`), '');
    }
  }
  if (!run.workItems.length) out.push(`## Run ${run.runId} of ${run.definitionName}`, '');

  const test = summary.testExitCode === undefined ? 'not run' : summary.testExitCode === 0 ? 'passed' : `failed (exit ${summary.testExitCode})`;
  out.push('## Outcome', '');
  out.push(`- Tests: ${test}`);
  out.push(
    `- Change: ${summary.filesChanged} files changed, +${summary.insertions} −${summary.deletions} (\`${summary.baseCommit.slice(0, 12)}..${summary.headCommit.slice(0, 12)}\`)`,
  );
  if (summary.previewUrl)
    out.push(`- Preview: ${summary.previewUrl}${summary.previewAliasUrl ? ` (latest for this work item: ${summary.previewAliasUrl})` : ''}`);
  out.push('');

  out.push('## Phases', '', '| phase | state | duration |', '| --- | --- | --- |');
  for (const p of input.phases) {
    const state = p.exitCode !== undefined && p.exitCode !== 0 ? `${p.state} (exit ${p.exitCode})` : p.state;
    out.push(`| ${p.phase} | ${cell(state)} | ${seconds(p.durationMs)} |`);
  }
  out.push('');
  const link = input.runLink ? `[${run.runId}](${input.runLink})` : `\`${run.runId}\``;
  out.push(`Run ${link} (plan ${run.planId} v${run.planVersion}, definition ${run.definitionName}) — \`ameide runs get ${run.runId}\``);
  out.push('', '<!-- opened and updated by Ameide delivery automation: every rerun of this work branch updates this pull request -->');
  return out.join('\n') + '\n';
}
