import type { PhaseUnit } from '../context.js';

/** The tenant's mirror, the run's import repository and the checkout made inside the sandbox. */
export const prepare: PhaseUnit = {
  name: 'prepare',
  async run(ctx) {
    const ws = await ctx.activities.git.prepareWorkspace(ctx.input);
    ctx.workspace = { worktreePath: ws.worktreePath, branch: ws.branch, baseCommit: ws.baseCommit, promptFile: ws.promptFile };
    ctx.summary.branch = ws.branch;
    ctx.summary.baseCommit = ws.baseCommit;
    return { state: 'succeeded', durationMs: ws.durationMs, outputTail: ws.outputTail };
  },
};
