import { workspaceOf, type PhaseUnit } from '../context.js';

/**
 * The gate: the sandbox's work is exported, verified and reviewed (path policy, push protection) as
 * a whole, then exactly that is pushed as the work branch.
 */
export const publish: PhaseUnit = {
  name: 'publish',
  async run(ctx) {
    const ws = workspaceOf(ctx);
    // The commit time comes from the workflow, so every attempt of publish makes the same commit.
    const pub = await ctx.activities.git.publishBranch({
      run: ctx.input,
      worktreePath: ws.worktreePath,
      branch: ws.branch,
      baseCommit: ws.baseCommit,
      commitTime: new Date().toISOString(),
    });
    Object.assign(ctx.summary, {
      headCommit: pub.headCommit,
      filesChanged: pub.filesChanged,
      insertions: pub.insertions,
      deletions: pub.deletions,
      pushed: pub.pushed,
    });
    if (pub.violations?.length) {
      ctx.summary.policyViolations = pub.violations;
      return {
        state: 'failed',
        durationMs: pub.durationMs,
        message: `policy violation: the change touches paths the definition does not allow: ${pub.violations.join(', ')}`,
      };
    }
    return { state: 'succeeded', durationMs: pub.durationMs, outputTail: pub.outputTail };
  },
};
