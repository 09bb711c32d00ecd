import { create } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import { ApprovePlanResponseSchema, RejectPlanResponseSchema, type ApprovePlanRequest, type RejectPlanRequest } from '@ameide/contracts';
import type { PlanRepository } from '@ameide/db';
import type { BacklogAutomation } from '../backlog/automation.js';
import { FailedPreconditionError, NotFoundError } from '../errors.js';
import { planToProto, runToProto } from '../mapping.js';
import { resolveId } from '../validation.js';
import { handle, principalOf } from './context.js';

/** The approval gate: a plan automation made for a profile that requires approval waits for a person. */
export class ApprovalHandlers {
  constructor(
    private readonly plans: PlanRepository,
    private readonly automation: BacklogAutomation,
  ) {}

  /** The plan an `id` field names (its id, or a short id); NotFound when none. */
  private async planId(tenantId: string, id: string): Promise<string> {
    const full = await resolveId(this.plans, 'plan', tenantId, 'id', id);
    if (!full) throw new NotFoundError('plan', id);
    return full;
  }

  /** Why a plan cannot be decided on now: it is unknown, or not waiting. */
  private async notWaiting(tenantId: string, id: string): Promise<never> {
    const plan = await this.plans.get(tenantId, id);
    if (!plan) throw new NotFoundError('plan', id);
    const state = (plan.approval?.state ?? 'APPROVAL_STATE_NOT_REQUIRED').replace('APPROVAL_STATE_', '').toLowerCase().replace('_', ' ');
    throw new FailedPreconditionError(`plan ${id} is not waiting for approval (approval: ${state})`);
  }

  approvePlan = (req: ApprovePlanRequest, ctx: HandlerContext) =>
    handle(async () => {
      const who = principalOf(ctx);
      const id = await this.planId(who.tenantId, req.id);
      const done = await this.automation.approve(who.tenantId, id, who.subject, req.reason);
      if (!done) return this.notWaiting(who.tenantId, id);
      return create(ApprovePlanResponseSchema, { plan: planToProto(done.plan), run: runToProto(done.run) });
    });

  rejectPlan = (req: RejectPlanRequest, ctx: HandlerContext) =>
    handle(async () => {
      const who = principalOf(ctx);
      const id = await this.planId(who.tenantId, req.id);
      const plan = await this.automation.reject(who.tenantId, id, who.subject, req.reason);
      if (!plan) return this.notWaiting(who.tenantId, id);
      return create(RejectPlanResponseSchema, { plan: planToProto(plan) });
    });
}
