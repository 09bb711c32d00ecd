import { CancellationScope, ParentClosePolicy, startChild } from '@temporalio/workflow';
import { previewWorkflowId, RUN_PREVIEW_WORKFLOW, type PreviewWorkflowInput } from '@ameide/temporal';
import { workspaceOf, type PhaseUnit } from '../context.js';

/**
 * A preview of the pushed change: served by the worker behind the preview router (local) or deployed
 * by the definition's command. A local preview's lifetime is a workflow of its own (runPreview), so
 * its TTL holds whatever happens to this run or its worker.
 */
export const preview: PhaseUnit = {
  name: 'preview',
  applies: (ctx) => Boolean(ctx.input.repo.preview),
  async run(ctx) {
    const ws = workspaceOf(ctx);
    const r = await ctx.activities.preview.startPreview({ run: ctx.input, worktreePath: ws.worktreePath, headCommit: ctx.summary.headCommit });
    if (r.failure) return { state: 'failed', durationMs: r.durationMs, outputTail: r.outputTail, message: `preview failed: ${r.failure}` };
    if (r.stopQueue && r.expireTime) {
      const input: PreviewWorkflowInput = {
        runId: ctx.input.runId,
        tenantId: ctx.input.tenantId,
        stopQueue: r.stopQueue,
        expireTime: r.expireTime,
        graceSeconds: r.graceSeconds ?? 0,
      };
      // Started even if the run is being cancelled: a live preview always has its timer.
      await CancellationScope.nonCancellable(() =>
        startChild(RUN_PREVIEW_WORKFLOW, { workflowId: previewWorkflowId(ctx.input.runId), parentClosePolicy: ParentClosePolicy.ABANDON, args: [input] }),
      );
    }
    ctx.summary.previewUrl = r.url;
    ctx.summary.previewAliasUrl = r.aliasUrl || undefined;
    ctx.post({
      kind: 'preview_live',
      phase: 'preview',
      message: `preview live at ${r.url}`,
      attributes: { url: r.url, alias_url: r.aliasUrl, health: r.health, ...(r.expireTime ? { expire_time: r.expireTime } : {}) },
      summary: { ...ctx.summary },
    });
    const alias = r.aliasUrl ? `\nalias ${r.aliasUrl}` : '';
    return { state: 'succeeded', durationMs: r.durationMs, outputTail: `preview ${r.url}${alias}\n${r.health}` };
  },
};
