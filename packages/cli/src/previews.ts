import { toJson } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { PreviewSchema, type Preview } from '@ameide/contracts';
import type { WorkflowServiceClient } from '@ameide/sdk';
import { flag, has, UsageError, type Args } from './args.js';
import type { Output } from './commands.js';

const when = (t: Preview['liveTime']) => (t ? timestampDate(t).toISOString().replace('T', ' ').slice(0, 19) : '-');

/** One preview per line: run, work item, state (and why it stopped), URL, alias when it points here. */
function formatLine(p: Preview): string {
  const state = p.state === 'stopped' ? `stopped (${p.stopReason || 'no reason'}, ${when(p.stopTime)})` : `live since ${when(p.liveTime)}`;
  const alias = p.aliased && p.aliasUrl ? `  alias ${p.aliasUrl}` : '';
  return `${p.runId.slice(0, 8)}  ${(p.workItemId || '-').padEnd(12)} ${p.provider.padEnd(7)} ${state}  ${p.url || '-'}${alias}`;
}

/** `ameide previews list`: runs' previews, live and stopped, with their URLs. */
export async function previewsCommand(api: WorkflowServiceClient, sub: string, args: Args, o: Output): Promise<number> {
  if (sub !== 'list') throw new UsageError('previews needs list');
  const res = await api.listPreviews({ workItemId: flag(args, 'work-item') ?? '', runId: flag(args, 'run') ?? '', state: flag(args, 'state') ?? '' });
  if (has(args, 'json'))
    o.out(
      JSON.stringify(
        res.previews.map((p) => toJson(PreviewSchema, p)),
        null,
        2,
      ),
    );
  else o.out(res.previews.length ? res.previews.map(formatLine).join('\n') : 'no previews');
  return 0;
}
