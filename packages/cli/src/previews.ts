import { PreviewSchema, type Preview } from '@ameide/contracts';
import type { OutputOptions } from './args.js';
import type { Ctx } from './context.js';
import { listPages } from './pages.js';
import { ago, emit, formatOf, protoJson, statusColour, table, when } from './output.js';

export async function previewsList(ctx: Ctx, opts: OutputOptions & { workItem?: string; run?: string; state?: string; limit?: number }): Promise<number> {
  const api = ctx.workflows();
  const res = {
    previews: await listPages(opts.limit, async (pageSize, pageToken) => {
      const r = await api.listPreviews({ workItemId: opts.workItem ?? '', runId: opts.run ?? '', state: opts.state ?? '', pageSize, pageToken });
      return { items: r.previews, nextPageToken: r.nextPageToken };
    }),
  };
  const since = (p: Preview, wide: boolean) =>
    p.state === 'stopped'
      ? `${p.stopReason || 'no reason'}, ${wide ? when(p.stopTime) : ago(p.stopTime)}`
      : `since ${wide ? when(p.liveTime) : ago(p.liveTime)}`;
  const row = (p: Preview, wide: boolean) => [
    wide ? p.runId : p.runId.slice(0, 8),
    p.workItemId || '-',
    p.provider,
    p.state,
    since(p, wide),
    p.url || '-',
    p.aliased && p.aliasUrl ? p.aliasUrl : '-',
  ];
  const cols = [
    { header: 'run' },
    { header: 'work item' },
    { header: 'provider' },
    { header: 'state', colour: statusColour },
    { header: 'since / why' },
    { header: 'url' },
    { header: 'alias' },
  ];
  emit(
    ctx.o,
    formatOf(opts),
    res.previews.map((p) => protoJson(PreviewSchema, p)),
    () =>
      table(
        ctx.term,
        cols,
        res.previews.map((p) => row(p, false)),
        'no previews',
      ),
    () =>
      table(
        ctx.term,
        cols,
        res.previews.map((p) => row(p, true)),
        'no previews',
      ),
  );
  return 0;
}
