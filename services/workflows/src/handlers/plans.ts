import { create, fromJson, toJson, type JsonObject, type JsonValue } from '@bufbuild/protobuf';
import diff from 'microdiff';
import type { HandlerContext } from '@connectrpc/connect';
import {
  ChangeKind,
  CreatePlanResponseSchema,
  DiffPlansResponseSchema,
  GetPlanResponseSchema,
  ListPlansResponseSchema,
  MethodologyContextSchema,
  PlanChangeSchema,
  PlanSpecSchema,
  Trigger,
  type CreatePlanRequest,
  type DiffPlansRequest,
  type GetPlanRequest,
  type ListPlansRequest,
  type MethodologyContext,
  type PlanChange,
  type PlanSpecJson,
  type WorkItem,
} from '@ameide/contracts';
import type { Annotations, DefinitionRepository, DefinitionRow, PlanRepository, PlanRow } from '@ameide/db';
import { FailedPreconditionError, InvalidFieldError, NotFoundError } from '../errors.js';
import { planToProto } from '../mapping.js';
import { isUuid, pageSize, requireId, resolveId, validateMethodology, validateWorkItems } from '../validation.js';
import { PAGED_LISTS, pageAfter, pageOf } from '../page-token.js';
import { handle, principalOf } from './context.js';

/** What a plan is made from. */
export interface PlanInput {
  definition: string;
  workItems: WorkItem[];
  methodology?: MethodologyContext;
  trigger: Trigger;
  annotations: Annotations;
}

/** Creates plans; shared by CreatePlan and StartWorkflowRun (which plans on the fly). */
export class Planner {
  constructor(
    private readonly definitions: DefinitionRepository,
    private readonly plans: PlanRepository,
  ) {}

  resolveDefinition(tenantId: string, idOrName: string, field = 'definition'): Promise<DefinitionRow> {
    return findDefinition(this.definitions, tenantId, field, idOrName);
  }

  /** Creates a plan; one for a backlog work item revision records it (and takes the item's next plan version). */
  async createPlan(tenantId: string, input: PlanInput, workItem?: { id: string; revision: number }): Promise<PlanRow> {
    validateWorkItems(input.workItems);
    validateMethodology(input.methodology);
    const def = await this.resolveDefinition(tenantId, input.definition);
    if (def.deletedAt) throw new FailedPreconditionError(`definition: ${deletedMessage(def)}`);
    const methodology = input.methodology ?? create(MethodologyContextSchema);
    // The work items a plan covers are always part of its methodology context, so lists and search
    // attributes find the run by any of them.
    for (const w of input.workItems) if (!methodology.workItemIds.includes(w.id)) methodology.workItemIds.push(w.id);
    const spec = toJson(
      PlanSpecSchema,
      create(PlanSpecSchema, {
        definitionId: def.id,
        definitionName: def.name,
        definitionVersion: def.version,
        workItems: input.workItems,
        methodology,
        trigger: input.trigger === Trigger.UNSPECIFIED ? Trigger.MANUAL : input.trigger,
      }),
    ) as JsonObject as PlanSpecJson;
    spec.repo = def.spec;
    return this.plans.insert(tenantId, def.id, spec, input.annotations, workItem);
  }
}

/** What a caller is told about a definition that is deleted. */
export function deletedMessage(row: { id: string; name: string; deletedAt: Date | null }): string {
  return `definition "${row.name}" (${row.id}) was deleted at ${row.deletedAt?.toISOString() ?? 'just now'}: apply it again to use the name`;
}

/** The tenant's definition a field names: by name, by id, or by a short id (a unique prefix of its id); NotFound otherwise. */
export async function findDefinition(definitions: DefinitionRepository, tenantId: string, field: string, idOrName: string): Promise<DefinitionRow> {
  let row = await definitions.get(tenantId, requireId(field, idOrName));
  if (!row && !isUuid(idOrName)) {
    const id = await resolveId(definitions, 'definition', tenantId, field, idOrName, true);
    row = id ? await definitions.get(tenantId, id) : undefined;
  }
  if (!row) throw new NotFoundError('definition', idOrName);
  return row;
}

/** Plan RPCs. */
export class PlanHandlers {
  constructor(
    private readonly planner: Planner,
    private readonly plans: PlanRepository,
  ) {}

  createPlan = (req: CreatePlanRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const row = await this.planner.createPlan(tenantId, req);
      return create(CreatePlanResponseSchema, { plan: planToProto(row) });
    });

  getPlan = (req: GetPlanRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      return create(GetPlanResponseSchema, { plan: planToProto(await this.planById(tenantId, 'id', req.id)) });
    });

  listPlans = (req: ListPlansRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const definitionId = req.definition ? (await this.planner.resolveDefinition(tenantId, req.definition)).id : undefined;
      const list = PAGED_LISTS.plans;
      const filter = [tenantId, definitionId ?? '', req.workItemId];
      const size = pageSize(req.pageSize);
      const after = pageAfter(list, req.pageToken, filter);
      const rows = await this.plans.list(tenantId, { definitionId, workItemId: req.workItemId || undefined, limit: size + 1, after });
      const { page, nextPageToken } = pageOf(list, rows, size, (r) => r.listKey, filter);
      return create(ListPlansResponseSchema, { plans: page.map((r) => planToProto(r)), nextPageToken });
    });

  diffPlans = (req: DiffPlansRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const plan = await this.planById(tenantId, 'plan_id', req.planId);
      let from: PlanRow;
      let to: PlanRow;
      if (req.otherPlanId) {
        [from, to] = [plan, await this.planById(tenantId, 'other_plan_id', req.otherPlanId)];
      } else {
        const workItemId = plan.workItemId;
        if (!workItemId)
          throw new InvalidFieldError(
            'plan_id',
            `plan ${plan.id} was not made for a work item, so it has no other versions: give other_plan_id to compare it with`,
          );
        const version = async (field: string, v: number) => {
          const row = v === plan.version ? plan : await this.plans.byWorkItemVersion(tenantId, workItemId, v);
          if (!row)
            throw new InvalidFieldError(
              field,
              `work item ${workItemId} has no plan version ${v}${v === 0 && req.fromVersion === undefined ? ` (plan ${plan.id} is its first: give to_version or other_plan_id)` : ''}`,
            );
          return row;
        };
        from = await version('from_version', req.fromVersion ?? plan.version - 1);
        to = await version('to_version', req.toVersion ?? plan.version);
      }
      return create(DiffPlansResponseSchema, {
        fromPlanId: from.id,
        fromVersion: from.version,
        toPlanId: to.id,
        toVersion: to.version,
        changes: diffPlanSpecs(from, to),
      });
    });

  /** The tenant's plan a field names: its id or a short id (a unique prefix). */
  private async planById(tenantId: string, field: string, id: string): Promise<PlanRow> {
    const full = await resolveId(this.plans, 'plan', tenantId, field, id);
    const row = full ? await this.plans.get(tenantId, full) : undefined;
    if (!row) throw new NotFoundError('plan', id);
    return row;
  }
}

/** A plan's spec as the API shows it, with proto field names and every field (empty ones too), so paths read like the proto. */
function specForDiff(row: PlanRow): JsonObject {
  const spec = fromJson(PlanSpecSchema, row.spec as JsonObject, { ignoreUnknownFields: true });
  return toJson(PlanSpecSchema, spec, { useProtoFieldName: true, alwaysEmitImplicit: true }) as JsonObject;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `spec.work_items[0].acceptance_criteria[1]`; map keys that are not identifiers are quoted: `spec.repo.env["A.B"]`. */
function changePath(path: Array<string | number>): string {
  return path.reduce<string>((out, p) => out + (typeof p === 'number' ? `[${p}]` : IDENTIFIER.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`), 'spec');
}

/** What differs between two plans' specs, one change per added, removed or changed value. */
export function diffPlanSpecs(from: PlanRow, to: PlanRow): PlanChange[] {
  const text = (v: unknown) => (v === undefined ? '' : JSON.stringify(v as JsonValue));
  return diff(specForDiff(from), specForDiff(to)).map((d) =>
    create(PlanChangeSchema, {
      path: changePath(d.path),
      kind: d.type === 'CREATE' ? ChangeKind.ADDED : d.type === 'REMOVE' ? ChangeKind.REMOVED : ChangeKind.CHANGED,
      oldValue: d.type === 'CREATE' ? '' : text(d.oldValue),
      newValue: d.type === 'REMOVE' ? '' : text(d.value),
    }),
  );
}
