import { create, toJson, type JsonObject } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import {
  CreatePlanResponseSchema,
  GetPlanResponseSchema,
  ListPlansResponseSchema,
  MethodologyContextSchema,
  PlanSpecSchema,
  Trigger,
  type CreatePlanRequest,
  type GetPlanRequest,
  type ListPlansRequest,
  type MethodologyContext,
  type PlanSpecJson,
  type WorkItem,
} from '@ameide/contracts';
import type { Annotations, DefinitionRepository, DefinitionRow, PlanRepository, PlanRow } from '@ameide/db';
import { NotFoundError } from '../errors.js';
import { planToProto } from '../mapping.js';
import { isUuid, pageSize, requireId, validateMethodology, validateWorkItems } from '../validation.js';
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

  async resolveDefinition(tenantId: string, idOrName: string, field = 'definition'): Promise<DefinitionRow> {
    const row = await this.definitions.get(tenantId, requireId(field, idOrName));
    if (!row) throw new NotFoundError('definition', idOrName);
    return row;
  }

  /** Creates a plan; one for a backlog work item revision records it (and takes the item's next plan version). */
  async createPlan(tenantId: string, input: PlanInput, workItem?: { id: string; revision: number }): Promise<PlanRow> {
    validateWorkItems(input.workItems);
    validateMethodology(input.methodology);
    const def = await this.resolveDefinition(tenantId, input.definition);
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
      const row = isUuid(requireId('id', req.id)) ? await this.plans.get(tenantId, req.id) : undefined;
      if (!row) throw new NotFoundError('plan', req.id);
      return create(GetPlanResponseSchema, { plan: planToProto(row) });
    });

  listPlans = (req: ListPlansRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const definitionId = req.definition ? (await this.planner.resolveDefinition(tenantId, req.definition)).id : undefined;
      const rows = await this.plans.list(tenantId, { definitionId, workItemId: req.workItemId || undefined, limit: pageSize(req.pageSize) });
      return create(ListPlansResponseSchema, { plans: rows.map(planToProto) });
    });
}
