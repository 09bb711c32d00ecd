import { governanceV1 } from '@ameide/contracts';
import { commandLineError } from './args.js';
import type { OutputOptions } from './args.js';
import type { Ctx } from './context.js';
import { listPages } from './pages.js';
import { ago, emit, formatOf, protoJson, statusColour, table, when } from './output.js';

const { ImpedimentSchema, ImpedimentState } = governanceV1;
type Impediment = governanceV1.Impediment;

/** `--state` values and what they select. */
const STATES: Record<string, governanceV1.ImpedimentState> = {
  open: ImpedimentState.OPEN,
  resolved: ImpedimentState.RESOLVED,
  reassigned: ImpedimentState.REASSIGNED_TO_AGENT,
  reassigned_to_agent: ImpedimentState.REASSIGNED_TO_AGENT,
};

function stateName(s: governanceV1.ImpedimentState): string {
  if (s === ImpedimentState.OPEN) return 'open';
  if (s === ImpedimentState.RESOLVED) return 'resolved';
  if (s === ImpedimentState.REASSIGNED_TO_AGENT) return 'with agent';
  return 'unknown';
}

const firstLine = (s: string) => s.split('\n', 1)[0] ?? '';

/** The command that restores the branch of an impediment's run from its handoff bundle. */
export const restoreCommand = (runId: string) => `ameide runs handoff ${runId}`;

function formatImpediment(i: Impediment): string {
  const indent = (s: string) => s.split('\n').join('\n            ');
  return [
    `impediment ${i.id} (${stateName(i.state)})`,
    `cause       ${i.cause}`,
    `reason      ${indent(i.reason || '-')}`,
    `phase       ${i.phase || '-'}`,
    `run         ${i.runId || '-'}`,
    `work item   ${i.workItemId || '-'}`,
    `timeboxes   ${i.timeboxIds.join(', ') || '-'}`,
    `goals       ${i.goalIds.join(', ') || '-'}`,
    `assignee    ${i.assignee || (i.state === ImpedimentState.REASSIGNED_TO_AGENT ? 'the agent' : '-')}`,
    ...(i.handoffUri && i.runId ? [`handoff     ${i.handoffUri}`, `restore     ${restoreCommand(i.runId)}`] : [`handoff     - (no handoff bundle was stored)`]),
    ...(i.rerunId ? [`rerun       ${i.rerunId}`] : []),
    ...(i.resolution ? [`resolution  ${indent(i.resolution)}`] : []),
    `raised      ${when(i.createTime)}, updated ${when(i.updateTime)}`,
  ].join('\n');
}

const asJson = (i: Impediment) => protoJson(ImpedimentSchema, i);

export async function impedimentsList(
  ctx: Ctx,
  opts: OutputOptions & { state?: string; workItem?: string; run?: string; assignee?: string; limit?: number },
): Promise<number> {
  const s = opts.state;
  if (s !== undefined && STATES[s] === undefined) throw commandLineError(`--state must be open, resolved or reassigned, not "${s}"`);
  const api = ctx.governance();
  const res = {
    impediments: await listPages(opts.limit, async (pageSize, pageToken) => {
      const r = await api.listImpediments({
        state: s ? STATES[s] : ImpedimentState.UNSPECIFIED,
        workItemId: opts.workItem ?? '',
        runId: opts.run ?? '',
        assignee: opts.assignee ?? '',
        pageSize,
        pageToken,
      });
      return { items: r.impediments, nextPageToken: r.nextPageToken };
    }),
  };
  const row = (i: Impediment, wide: boolean) => [
    i.id,
    stateName(i.state),
    i.cause,
    i.workItemId || '-',
    (wide ? i.runId : i.runId.slice(0, 8)) || '-',
    i.assignee || '-',
    wide ? when(i.createTime) : ago(i.createTime),
    firstLine(i.reason),
  ];
  const cols = (wide: boolean) => [
    { header: 'id' },
    { header: 'state', colour: statusColour },
    { header: 'cause' },
    { header: 'work item' },
    { header: 'run' },
    { header: 'assignee' },
    { header: 'raised' },
    { header: 'reason', shrink: !wide },
  ];
  emit(
    ctx.o,
    formatOf(opts),
    res.impediments.map(asJson),
    () =>
      table(
        ctx.term,
        cols(false),
        res.impediments.map((i) => row(i, false)),
        'no impediments',
      ),
    () =>
      table(
        ctx.term,
        cols(true),
        res.impediments.map((i) => row(i, true)),
        'no impediments',
      ),
  );
  return 0;
}

export async function impedimentsGet(ctx: Ctx, id: string, opts: OutputOptions): Promise<number> {
  const { impediment } = await ctx.governance().getImpediment({ id });
  emit(ctx.o, formatOf(opts), asJson(impediment!), () => formatImpediment(impediment!));
  return 0;
}

export async function impedimentsResolve(ctx: Ctx, id: string, opts: OutputOptions & { resolution: string }): Promise<number> {
  if (!opts.resolution.trim()) throw commandLineError('impediments resolve needs --resolution "what was done"');
  const { impediment } = await ctx.governance().resolveImpediment({ id, resolution: opts.resolution });
  emit(ctx.o, formatOf(opts), asJson(impediment!), () => `resolved impediment ${impediment!.id}: ${impediment!.resolution}`);
  return 0;
}

export async function impedimentsReassign(ctx: Ctx, id: string, opts: OutputOptions & { to: string; note?: string }): Promise<number> {
  if (!opts.to.trim()) throw commandLineError('impediments reassign needs --to <person|agent>');
  const { impediment } = await ctx.governance().reassignImpediment({ id, assignee: opts.to, note: opts.note ?? '' });
  const i = impediment!;
  emit(ctx.o, formatOf(opts), asJson(i), () =>
    i.state === ImpedimentState.REASSIGNED_TO_AGENT
      ? `impediment ${i.id} handed back to the agent: rerun ${i.rerunId} of run ${i.runId}\nfollow it with: ameide runs watch ${i.rerunId}`
      : `impediment ${i.id} assigned to ${i.assignee}`,
  );
  return 0;
}
