import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { governanceV1 } from '@ameide/contracts';
import { ImpedimentRepository, isUuid, RunRepository, type ImpedimentRow, type ImpedimentStateName } from '@ameide/db';
import { FailedPreconditionError, InvalidFieldError, NotFoundError } from '../errors.js';
import type { GovernanceDeps, GovernanceRoutes } from '../governance/deps.js';
import { RERUN_HANDOFF_REASON, RERUN_HANDOFF_URI, RERUN_IMPEDIMENT, RERUN_NOTE, RERUN_OF } from '../impediments/cause.js';
import { filterId, pageSize, requireId } from '../validation.js';
import { PAGED_LISTS, pageAfter, pageOf } from '../page-token.js';
import { handle, principalOf } from './context.js';

const { ImpedimentState } = governanceV1;

/** The assignee that hands an impediment back to the agent (a rerun) rather than to a person. */
export const AGENT = 'agent';

const STATE_NAMES: Record<ImpedimentStateName, governanceV1.ImpedimentState> = {
  open: ImpedimentState.OPEN,
  resolved: ImpedimentState.RESOLVED,
  reassigned_to_agent: ImpedimentState.REASSIGNED_TO_AGENT,
};

/** Annotation values of the rerun: at most this many bytes (the API's limit of an annotation). */
const ANNOTATION_BYTES = 4096;

export function impedimentToProto(row: ImpedimentRow): governanceV1.Impediment {
  return create(governanceV1.ImpedimentSchema, {
    id: row.id,
    tenantId: row.tenantId,
    cause: row.cause,
    reason: row.reason,
    phase: row.phase,
    runId: row.runId ?? '',
    workItemId: row.workItemId,
    timeboxIds: row.timeboxIds,
    goalIds: row.goalIds,
    handoffUri: row.handoffUri,
    state: STATE_NAMES[row.state as ImpedimentStateName] ?? ImpedimentState.UNSPECIFIED,
    assignee: row.assignee,
    resolution: row.resolution,
    rerunId: row.rerunId ?? '',
    createTime: timestampFromDate(row.createdAt),
    updateTime: timestampFromDate(row.updatedAt),
  });
}

/** `s` cut to at most `max` bytes of UTF-8, on a character boundary. */
function cutBytes(s: string, max: number): string {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  let out = Buffer.from(s, 'utf8')
    .subarray(0, max - 3)
    .toString('utf8');
  if (out.endsWith('\uFFFD')) out = out.slice(0, -1);
  return `${out}…`;
}

/** Text a person typed: trimmed, not empty, one line without control characters. */
function requireText(field: string, value: string, multiline = false): string {
  const v = value.trim();
  if (!v) throw new InvalidFieldError(field, 'must not be empty');
  if ((multiline ? /[\u0000-\u0008\u000b-\u001f\u007f]/ : /[\u0000-\u001f\u007f]/).test(v))
    throw new InvalidFieldError(field, 'must not contain control characters');
  return v;
}

/** ListImpediments, GetImpediment, ResolveImpediment, ReassignImpediment. */
export function impedimentRoutes(deps: GovernanceDeps): GovernanceRoutes {
  const impediments = new ImpedimentRepository(deps.db);
  const runs = new RunRepository(deps.db);

  const load = async (tenantId: string, id: string): Promise<ImpedimentRow> => {
    requireId('id', id);
    const row = isUuid(id) ? await impediments.get(tenantId, id) : undefined;
    if (!row) throw new NotFoundError('impediment', id);
    return row;
  };

  /** An update refused because the impediment is resolved (meanwhile, perhaps): say so. */
  const changed = async (tenantId: string, id: string, row: ImpedimentRow | undefined): Promise<ImpedimentRow> => {
    if (row) return row;
    const now = await load(tenantId, id);
    throw new FailedPreconditionError(`impediment ${id} is resolved already (${now.resolution || 'no resolution given'})`);
  };

  return {
    listImpediments: (req, ctx) =>
      handle(async () => {
        const { tenantId } = principalOf(ctx);
        const state = (Object.keys(STATE_NAMES) as ImpedimentStateName[]).find((k) => STATE_NAMES[k] === req.state);
        const runId = await filterId(runs, 'run', tenantId, 'run_id', req.runId);
        const assignee = req.assignee.trim() || undefined;
        const list = PAGED_LISTS.impediments;
        const filter = [tenantId, state ?? '', req.workItemId, runId ?? '', assignee ?? ''];
        const size = pageSize(req.pageSize);
        const after = pageAfter(list, req.pageToken, filter);
        const rows = await impediments.list(tenantId, { state, workItemId: req.workItemId || undefined, runId, assignee, limit: size + 1, after });
        const { page, nextPageToken } = pageOf(list, rows, size, (r) => r.listKey, filter);
        return create(governanceV1.ListImpedimentsResponseSchema, { impediments: page.map((r) => impedimentToProto(r)), nextPageToken });
      }),

    getImpediment: (req, ctx) =>
      handle(async () => {
        const row = await load(principalOf(ctx).tenantId, req.id);
        return create(governanceV1.GetImpedimentResponseSchema, { impediment: impedimentToProto(row) });
      }),

    resolveImpediment: (req, ctx) =>
      handle(async () => {
        const { tenantId } = principalOf(ctx);
        const row = await load(tenantId, req.id);
        const resolution = requireText('resolution', req.resolution, true);
        const resolved = await changed(tenantId, row.id, await impediments.resolve(tenantId, row.id, resolution));
        return create(governanceV1.ResolveImpedimentResponseSchema, { impediment: impedimentToProto(resolved) });
      }),

    reassignImpediment: (req, ctx) =>
      handle(async () => {
        const { tenantId } = principalOf(ctx);
        const row = await load(tenantId, req.id);
        const assignee = requireText('assignee', req.assignee);
        const note = req.note.trim() ? requireText('note', req.note, true) : '';
        if (row.state === 'resolved')
          throw new FailedPreconditionError(`impediment ${row.id} is resolved already (${row.resolution || 'no resolution given'})`);
        if (assignee.toLowerCase() !== AGENT) {
          const assigned = await changed(tenantId, row.id, await impediments.assign(tenantId, row.id, assignee));
          return create(governanceV1.ReassignImpedimentResponseSchema, { impediment: impedimentToProto(assigned) });
        }
        // Back to the agent: one rerun of the run's plan (the request id makes a repeat find it), on
        // the run's work branch, carrying the handoff's context into its prompt.
        const run = row.runId ? await runs.get(tenantId, row.runId) : undefined;
        if (!run) throw new FailedPreconditionError(`impediment ${row.id} has no run to rerun (it was deleted): assign it to a person`);
        const annotations: Record<string, string> = { [RERUN_OF]: run.id, [RERUN_IMPEDIMENT]: row.id };
        if (row.handoffUri) annotations[RERUN_HANDOFF_URI] = row.handoffUri;
        if (row.reason) annotations[RERUN_HANDOFF_REASON] = cutBytes(row.reason, ANNOTATION_BYTES);
        if (note) annotations[RERUN_NOTE] = cutBytes(note, ANNOTATION_BYTES);
        const rerun = await deps.startRun(tenantId, { planId: run.planId, requestId: `impediment:${row.id}`, annotations });
        const handedBack = await changed(tenantId, row.id, await impediments.reassignToAgent(tenantId, row.id, rerun.id));
        return create(governanceV1.ReassignImpedimentResponseSchema, { impediment: impedimentToProto(handedBack) });
      }),
  };
}
