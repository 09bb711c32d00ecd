import { Option, type Command } from 'commander';
import { PreviewSchema, type Preview } from '@ameide/contracts';
import { examples } from './args.js';
import { act, withLimit, withOutput, type OutputOptions } from './commands.js';
import type { Ctx } from './context.js';
import { ago, emit, formatOf, protoJson, statusColour, table, when } from './output.js';

/** `ameide previews list`: runs' previews, live and stopped, with their URLs. */
export function registerPreviews(program: Command, ctx: Ctx): void {
  const previews = program.command('previews').description("runs' previews: the running change behind the preview router");
  examples(previews, 'ameide previews list --work-item PROJ-12');

  examples(
    withLimit(
      withOutput(
        previews
          .command('list')
          .description('list previews: run, work item, provider, state (live since, or stopped and why), URL, and the alias when it points here')
          .option('--work-item <id>', "only this work item's previews")
          .option('--run <id>', "only this run's preview")
          .addOption(new Option('--state <state>', 'only live or only stopped previews').choices(['live', 'stopped'])),
      ),
    ),
    'ameide previews list --work-item PROJ-12 --state live',
  ).action(
    act(ctx, async (opts: OutputOptions & { workItem?: string; run?: string; state?: string; limit?: number }) => {
      const res = await ctx
        .workflows()
        .listPreviews({ workItemId: opts.workItem ?? '', runId: opts.run ?? '', state: opts.state ?? '', pageSize: opts.limit ?? 0 });
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
    }),
  );
}
