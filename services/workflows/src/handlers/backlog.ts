import { create, fromJson, toJson, type JsonObject } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext } from '@connectrpc/connect';
import { backlogV1, MethodologyContextSchema } from '@ameide/contracts';
import type { DefinitionRepository, ImpedimentRepository, ProfileRepository, ProfileRow, WorkItemRepository, WorkItemRow } from '@ameide/db';
import type { BacklogAutomation } from '../backlog/automation.js';
import { BUILT_IN_PROFILES, evaluateReadiness, normaliseProfile, triggers } from '../backlog/profiles.js';
import { InvalidFieldError, NotFoundError } from '../errors.js';
import { pageSize, requireName, requireWorkItemId, validateMethodology } from '../validation.js';
import { PAGED_LISTS, pageAfter, pageOf } from '../page-token.js';
import { handle, principalOf } from './context.js';

const { WorkItemState } = backlogV1;
const stateName = (s: backlogV1.WorkItemState) => backlogV1.WorkItemStateSchema.values.find((v) => v.number === s)?.name ?? '';

/** A profile as automation uses it: its spec and version, built in or the tenant's. */
interface ResolvedProfile {
  name: string;
  version: number;
  spec: backlogV1.ProfileSpec;
  builtIn: boolean;
  row?: ProfileRow;
}

/** Backlog RPCs (work items, methodology profiles) and the webhook's upsert. */
export class BacklogHandlers {
  constructor(
    private readonly items: WorkItemRepository,
    private readonly profiles: ProfileRepository,
    private readonly definitions: DefinitionRepository,
    private readonly automation: BacklogAutomation,
    /** Where a Definition of Ready that broke after promotion is raised (none: not raised). */
    private readonly impediments?: ImpedimentRepository,
  ) {}

  private async profile(tenantId: string, name: string): Promise<ResolvedProfile | undefined> {
    const own = await this.profiles.get(tenantId, name);
    if (own) return { name, version: own.version, spec: fromJson(backlogV1.ProfileSpecSchema, own.spec as JsonObject), builtIn: false, row: own };
    const builtIn = BUILT_IN_PROFILES[name];
    return builtIn && { name, version: 1, spec: builtIn, builtIn: true };
  }

  /**
   * Stores a work item revision (if newer than the stored one), evaluates its DoR, and when the
   * revision triggers, has automation plan and start its run. Used by the RPC and the webhook.
   */
  async upsert(tenantId: string, req: backlogV1.UpsertWorkItemRequest): Promise<backlogV1.UpsertWorkItemResponse> {
    requireWorkItemId('id', req.id);
    if (req.revision < 1n) throw new InvalidFieldError('revision', 'must be 1 or more (the backlog numbers its revisions)');
    const spec = req.spec;
    if (!spec) throw new InvalidFieldError('spec', 'is required');
    if (spec.state === WorkItemState.UNSPECIFIED)
      throw new InvalidFieldError('spec.state', 'must be one of proposed, backlog, ready, in_progress, done, removed');
    if (!spec.profile)
      throw new InvalidFieldError('spec.profile', `must name a methodology profile: ${Object.keys(BUILT_IN_PROFILES).join(', ')} or one of the tenant's`);
    validateMethodology(create(MethodologyContextSchema, { timeboxIds: spec.timeboxIds, goalIds: spec.goalIds, elementIds: spec.elementIds }), 'spec');
    const profile = await this.profile(tenantId, spec.profile);
    if (!profile)
      throw new InvalidFieldError('spec.profile', `no profile "${spec.profile}": use ${Object.keys(BUILT_IN_PROFILES).join(', ')} or apply one first`);
    const definitionResolvable = spec.definition ? Boolean((await this.definitions.get(tenantId, spec.definition))?.deletedAt === null) : false;
    const { met, rules } = evaluateReadiness(spec, profile.spec, { definitionResolvable });
    const readiness = create(backlogV1.ReadinessSchema, {
      met,
      rules,
      profile: profile.name,
      profileVersion: profile.version,
      triggerState: profile.spec.triggerState,
      approvalRequired: profile.spec.approvalRequired,
    });
    const fires = triggers(spec, profile.spec, met);
    const revision = Number(req.revision);
    const before = await this.items.get(tenantId, req.id);
    const { row, applied } = await this.items.upsertNewer({
      tenantId,
      id: req.id,
      revision,
      spec: toJson(backlogV1.WorkItemSpecSchema, spec) as Record<string, unknown>,
      annotations: req.annotations,
      readiness: toJson(backlogV1.ReadinessSchema, readiness) as Record<string, unknown>,
      state: stateName(spec.state),
      profile: profile.name,
      ready: met,
      triggerRevision: fires ? revision : null,
      readyAt: fires ? new Date() : null,
      done: spec.state === WorkItemState.DONE,
    });
    let current = row;
    if (applied) {
      // The run working on the item hears of its state change (its workflow's history shows it).
      if (before?.runId && before.state !== row.state) {
        await this.automation.recordChange(before.runId, {
          workItemId: req.id,
          revision,
          state: row.state,
          previousState: before.state,
          time: new Date().toISOString(),
        });
      }
      // Automation promoted the item (planned and ran it) on a revision that met its DoR; a newer
      // revision that no longer does needs a person: one impediment per promotion (its run).
      if (before?.runId && before.ready && !met && spec.state !== WorkItemState.DONE && spec.state !== WorkItemState.REMOVED) {
        const failing = rules.filter((r) => !r.passed).map((r) => `${r.rule}: ${r.detail}`);
        await this.impediments?.raise({
          tenantId,
          causeKey: `dor:${req.id}:${before.runId}`,
          cause: 'dor_broken',
          reason: `work item ${req.id} revision ${revision} no longer meets its Definition of Ready (${failing.join('; ')})`,
          phase: '',
          runId: before.runId,
          workItemId: req.id,
          timeboxIds: spec.timeboxIds,
          goalIds: spec.goalIds,
          handoffUri: '',
        });
      }
      try {
        if (fires) await this.automation.trigger(tenantId, req.id);
        if (spec.state === WorkItemState.REMOVED) await this.automation.cancelWaiting(tenantId, req.id, `work item ${req.id} was removed from the backlog`);
      } catch (err) {
        // Stored: the reconciler plans and starts what is pending.
        console.warn(`work item ${req.id} revision ${revision}: automation will be retried: ${(err as Error).message}`);
      }
      current = (await this.items.get(tenantId, req.id)) ?? row;
    }
    return create(backlogV1.UpsertWorkItemResponseSchema, { workItem: workItemToProto(current), applied });
  }

  upsertWorkItem = (req: backlogV1.UpsertWorkItemRequest, ctx: HandlerContext) => handle(() => this.upsert(principalOf(ctx).tenantId, req));

  getWorkItem = (req: backlogV1.GetWorkItemRequest, ctx: HandlerContext) =>
    handle(async () => {
      requireWorkItemId('id', req.id);
      const row = await this.items.get(principalOf(ctx).tenantId, req.id);
      if (!row) throw new NotFoundError('work item', req.id);
      return create(backlogV1.GetWorkItemResponseSchema, { workItem: workItemToProto(row) });
    });

  listWorkItems = (req: backlogV1.ListWorkItemsRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const f = {
        state: req.state ? stateName(req.state) : undefined,
        timeboxId: req.timeboxId || undefined,
        goalId: req.goalId || undefined,
        profile: req.profile || undefined,
        ready: req.ready,
      };
      const list = PAGED_LISTS.workItems;
      const filter = [tenantId, f.state ?? '', req.timeboxId, req.goalId, req.profile, req.ready ?? null];
      const size = pageSize(req.pageSize);
      const rows = await this.items.list(tenantId, { ...f, limit: size + 1, after: pageAfter(list, req.pageToken, filter) });
      const { page, nextPageToken } = pageOf(list, rows, size, (r) => r.listKey, filter);
      return create(backlogV1.ListWorkItemsResponseSchema, { workItems: page.map((r) => workItemToProto(r)), nextPageToken });
    });

  applyProfile = (req: backlogV1.ApplyProfileRequest, ctx: HandlerContext) =>
    handle(async () => {
      requireName('name', req.name);
      if (BUILT_IN_PROFILES[req.name]) throw new InvalidFieldError('name', `"${req.name}" is a built-in profile: choose another name`);
      const spec = normaliseProfile(req.spec);
      const row = await this.profiles.apply(principalOf(ctx).tenantId, req.name, toJson(backlogV1.ProfileSpecSchema, spec) as Record<string, unknown>);
      return create(backlogV1.ApplyProfileResponseSchema, { profile: profileToProto({ name: row.name, version: row.version, spec, builtIn: false, row }) });
    });

  getProfile = (req: backlogV1.GetProfileRequest, ctx: HandlerContext) =>
    handle(async () => {
      const p = await this.profile(principalOf(ctx).tenantId, requireName('name', req.name));
      if (!p) throw new NotFoundError('profile', req.name);
      return create(backlogV1.GetProfileResponseSchema, { profile: profileToProto(p) });
    });

  /** The built-in profiles (in their order), then the tenant's own by name (none has a built-in's name); the key is the name. */
  listProfiles = (req: backlogV1.ListProfilesRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const list = PAGED_LISTS.profiles;
      const size = pageSize(req.pageSize);
      const after = pageAfter(list, req.pageToken, [tenantId])?.[0] as string | undefined;
      const builtIns = Object.entries(BUILT_IN_PROFILES);
      const afterBuiltIn = after === undefined ? 0 : builtIns.findIndex(([name]) => name === after) + 1;
      // After a built-in: the built-ins after it, then the tenant's own from the first; after one of the tenant's own: its own after it.
      const builtInPage = after === undefined || afterBuiltIn > 0 ? builtIns.slice(afterBuiltIn) : [];
      const own = await this.profiles.list(tenantId, { limit: Math.max(size + 1 - builtInPage.length, 0), after: afterBuiltIn > 0 ? undefined : after });
      const all = [
        ...builtInPage.map(([name, spec]) => profileToProto({ name, version: 1, spec, builtIn: true })),
        ...own.map((row) =>
          profileToProto({ name: row.name, version: row.version, spec: fromJson(backlogV1.ProfileSpecSchema, row.spec as JsonObject), builtIn: false, row }),
        ),
      ];
      const { page, nextPageToken } = pageOf(list, all, size, (p) => [p.name], [tenantId]);
      return create(backlogV1.ListProfilesResponseSchema, { profiles: page, nextPageToken });
    });
}

export function workItemToProto(row: WorkItemRow): backlogV1.WorkItem {
  return create(backlogV1.WorkItemSchema, {
    id: row.id,
    tenantId: row.tenantId,
    revision: BigInt(row.revision),
    spec: fromJson(backlogV1.WorkItemSpecSchema, row.spec as JsonObject, { ignoreUnknownFields: true }),
    annotations: row.annotations,
    readiness: fromJson(backlogV1.ReadinessSchema, row.readiness as JsonObject, { ignoreUnknownFields: true }),
    planId: row.planId ?? '',
    runId: row.runId ?? '',
    triggeredRevision: BigInt(row.triggeredRevision ?? 0),
    readyTime: row.readyAt ? timestampFromDate(row.readyAt) : undefined,
    doneTime: row.doneAt ? timestampFromDate(row.doneAt) : undefined,
    leadTime: row.readyAt && row.doneAt ? durationFromMs(row.doneAt.getTime() - row.readyAt.getTime()) : undefined,
    createTime: timestampFromDate(row.createdAt),
    updateTime: timestampFromDate(row.updatedAt),
  });
}

function profileToProto(p: ResolvedProfile): backlogV1.Profile {
  return create(backlogV1.ProfileSchema, {
    name: p.name,
    tenantId: p.row?.tenantId ?? '',
    version: p.version,
    spec: p.spec,
    builtIn: p.builtIn,
    updateTime: p.row ? timestampFromDate(p.row.updatedAt) : undefined,
  });
}
