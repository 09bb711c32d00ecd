import { toJson } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { governanceV1 } from '@ameide/contracts';
import type { GovernanceServiceClient } from '@ameide/sdk';
import { flag, has, positional, UsageError, type Args } from './args.js';
import type { Output } from './commands.js';

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

const when = (t: Impediment['createTime']) => (t ? timestampDate(t).toISOString().replace('T', ' ').slice(0, 19) : '-');
const firstLine = (s: string) => s.split('\n', 1)[0] ?? '';

/** The command that restores the branch of an impediment's run from its handoff bundle. */
export const restoreCommand = (runId: string) => `ameide runs handoff ${runId}`;

/** One impediment per line: id, state, cause, work item, run, assignee, when, the reason's first line. */
function formatLine(i: Impediment): string {
  return `${i.id}  ${stateName(i.state).padEnd(10)} ${i.cause.padEnd(16)} ${(i.workItemId || '-').padEnd(12)} run ${i.runId.slice(0, 8) || '-'}  ${(i.assignee || '-').padEnd(12)} ${when(i.createTime)}  ${firstLine(i.reason)}`;
}

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

const asJson = (i: Impediment) => JSON.stringify(toJson(ImpedimentSchema, i), null, 2);

/** `ameide impediments list|get|resolve|reassign`: what automation could not finish, and who takes it on. */
export async function impedimentsCommand(api: GovernanceServiceClient, sub: string, args: Args, o: Output): Promise<number> {
  const json = has(args, 'json');
  switch (sub) {
    case 'list': {
      const s = flag(args, 'state');
      if (s !== undefined && STATES[s] === undefined) throw new UsageError(`--state must be open, resolved or reassigned, not "${s}"`);
      const res = await api.listImpediments({ state: s ? STATES[s] : ImpedimentState.UNSPECIFIED, workItemId: flag(args, 'work-item') ?? '' });
      if (json)
        o.out(
          JSON.stringify(
            res.impediments.map((i) => toJson(ImpedimentSchema, i)),
            null,
            2,
          ),
        );
      else o.out(res.impediments.length ? res.impediments.map(formatLine).join('\n') : 'no impediments');
      return 0;
    }
    case 'get': {
      const id = positional(args, 2, 'impediments get needs an impediment id');
      const { impediment } = await api.getImpediment({ id });
      o.out(json ? asJson(impediment!) : formatImpediment(impediment!));
      return 0;
    }
    case 'resolve': {
      const id = positional(args, 2, 'impediments resolve needs an impediment id');
      const resolution = flag(args, 'resolution');
      if (!resolution?.trim()) throw new UsageError('impediments resolve needs --resolution "what was done"');
      const { impediment } = await api.resolveImpediment({ id, resolution });
      o.out(json ? asJson(impediment!) : `resolved impediment ${impediment!.id}: ${impediment!.resolution}`);
      return 0;
    }
    case 'reassign': {
      const id = positional(args, 2, 'impediments reassign needs an impediment id');
      const to = flag(args, 'to');
      if (!to?.trim()) throw new UsageError('impediments reassign needs --to <person|agent>');
      const { impediment } = await api.reassignImpediment({ id, assignee: to, note: flag(args, 'note') ?? '' });
      const i = impediment!;
      if (json) o.out(asJson(i));
      else if (i.state === ImpedimentState.REASSIGNED_TO_AGENT)
        o.out(`impediment ${i.id} handed back to the agent: rerun ${i.rerunId} of run ${i.runId}\nfollow it with: ameide runs watch ${i.rerunId}`);
      else o.out(`impediment ${i.id} assigned to ${i.assignee}`);
      return 0;
    }
    default:
      throw new UsageError('impediments needs list, get, resolve or reassign');
  }
}
