import { create } from '@bufbuild/protobuf';
import { backlogV1 } from '@ameide/contracts';
import { InvalidFieldError } from '../errors.js';

type ProfileSpec = backlogV1.ProfileSpec;
type WorkItemSpec = backlogV1.WorkItemSpec;
const { WorkItemState } = backlogV1;

/** What a Definition of Ready rule can look at besides the work item itself. */
export interface ReadinessContext {
  /** Whether the item's definition names one the tenant has. */
  definitionResolvable: boolean;
}

/** One DoR rule kind: what it counts in a work item, and how it reads. */
interface ReadyRuleKind {
  /** How many entries the item has (or 1/0 for a yes/no property). */
  count(item: WorkItemSpec, ctx: ReadinessContext): number;
  /** Name of the thing counted, singular and plural. */
  noun: [string, string];
  /** A yes/no property: `min` does not apply. */
  single?: boolean;
}

const READY_RULES: Record<string, ReadyRuleKind> = {
  title: { count: (w) => (w.title.trim() ? 1 : 0), noun: ['title', 'titles'], single: true },
  description: { count: (w) => (w.description.trim() ? 1 : 0), noun: ['description', 'descriptions'], single: true },
  acceptance_criteria: { count: (w) => w.acceptanceCriteria.filter((c) => c.trim()).length, noun: ['acceptance criterion', 'acceptance criteria'] },
  context_link: { count: (w) => w.contextLinks.filter((c) => c.trim()).length, noun: ['architect context link', 'architect context links'] },
  definition: { count: (w, ctx) => (w.definition && ctx.definitionResolvable ? 1 : 0), noun: ['definition', 'definitions'], single: true },
  timebox: { count: (w) => w.timeboxIds.length, noun: ['timebox', 'timeboxes'] },
  goal: { count: (w) => w.goalIds.length, noun: ['goal', 'goals'] },
  element: { count: (w) => w.elementIds.length, noun: ['architecture element', 'architecture elements'] },
};

/** DoD rules, evaluated on a finished run and its evidence (governance/evidence.ts `evaluateDone`); listed so that profiles are validated. */
const DONE_RULES = new Set([
  'run_completed',
  'tests_passed',
  'preview_live',
  'pull_request_opened',
  'evidence_attached',
  'no_policy_violation',
  'budget_not_exceeded',
]);
const EVIDENCE_FROM = new Set(['timebox', 'goal', 'element']);

const rule = (kind: string, min = 0) => create(backlogV1.RuleSchema, { kind, min });
const target = (artifact: string, from: string) => create(backlogV1.EvidenceTargetSchema, { artifact, from });
/** The built-in profiles' DoD (and that of a run without profile); `run_completed` always comes first. */
export const DEFAULT_DONE_RULES = ['tests_passed', 'no_policy_violation', 'budget_not_exceeded', 'evidence_attached'];
const DONE = DEFAULT_DONE_RULES.map((k) => rule(k));

/** The built-in profiles: data, like a tenant's own. */
export const BUILT_IN_PROFILES: Readonly<Record<string, ProfileSpec>> = {
  scrum: create(backlogV1.ProfileSpecSchema, {
    description: 'Scrum: a Product Backlog Item is ready with acceptance criteria, a sprint and a sprint goal; evidence goes to the sprint Increment.',
    triggerState: WorkItemState.READY,
    readyRules: [rule('acceptance_criteria'), rule('definition'), rule('timebox'), rule('goal')],
    doneRules: DONE,
    evidenceTargets: [target('increment', 'timebox')],
  }),
  safe: create(backlogV1.ProfileSpecSchema, {
    description: 'SAFe: a story is ready with acceptance criteria, an iteration/PI and a PI objective; evidence goes to the Iteration and the PI Objective.',
    triggerState: WorkItemState.READY,
    readyRules: [rule('acceptance_criteria'), rule('definition'), rule('timebox'), rule('goal')],
    doneRules: DONE,
    evidenceTargets: [target('iteration', 'timebox'), target('pi_objective', 'goal')],
  }),
  togaf: create(backlogV1.ProfileSpecSchema, {
    description: 'TOGAF ADM: work is ready with acceptance criteria, architect context, architecture elements and the ADM deliverable it serves.',
    triggerState: WorkItemState.READY,
    readyRules: [rule('acceptance_criteria'), rule('context_link'), rule('definition'), rule('element'), rule('goal')],
    doneRules: DONE,
    evidenceTargets: [target('adm_deliverable', 'goal')],
  }),
};

/** Evaluates the profile's Definition of Ready on one work item revision: every rule, passed or not, and why. Pure. */
export function evaluateReadiness(item: WorkItemSpec, profile: ProfileSpec, ctx: ReadinessContext): { met: boolean; rules: backlogV1.RuleResult[] } {
  // A run needs a definition: every profile's DoR includes it, added where a profile leaves it out.
  const ready = profile.readyRules.some((r) => r.kind === 'definition') ? profile.readyRules : [...profile.readyRules, rule('definition')];
  const rules = ready.map((r) => {
    const kind = READY_RULES[r.kind]!;
    const need = kind.single ? 1 : Math.max(1, r.min);
    const have = kind.count(item, ctx);
    const [one, many] = kind.noun;
    let detail: string;
    if (r.kind === 'definition') {
      detail = !item.definition
        ? 'no definition named'
        : ctx.definitionResolvable
          ? `definition "${item.definition}" exists`
          : `no definition "${item.definition}"`;
    } else if (kind.single) {
      detail = have ? `has a ${one}` : `no ${one}`;
    } else {
      detail = `${have} ${have === 1 ? one : many}, needs at least ${need}`;
    }
    return create(backlogV1.RuleResultSchema, { rule: r.kind, passed: have >= need, detail });
  });
  return { met: rules.every((r) => r.passed), rules };
}

/** Whether a revision in `state` under a profile with this readiness asks for a run. */
export function triggers(item: WorkItemSpec, profile: ProfileSpec, met: boolean): boolean {
  return met && item.state === (profile.triggerState || WorkItemState.READY);
}

/** Checks a custom profile and fills defaults; throws InvalidFieldError naming the field. */
export function normaliseProfile(spec: ProfileSpec | undefined): ProfileSpec {
  if (!spec) throw new InvalidFieldError('spec', 'is required');
  if (spec.triggerState === WorkItemState.UNSPECIFIED) spec.triggerState = WorkItemState.READY;
  if (spec.triggerState === WorkItemState.REMOVED || spec.triggerState === WorkItemState.DONE) {
    throw new InvalidFieldError('spec.trigger_state', 'must be a state before the work is done (e.g. READY)');
  }
  spec.readyRules.forEach((r, i) => {
    const kind = READY_RULES[r.kind];
    if (!kind) throw new InvalidFieldError(`spec.ready_rules[${i}].kind`, `must be one of ${Object.keys(READY_RULES).join(', ')}`);
    if (kind.single && r.min > 1) throw new InvalidFieldError(`spec.ready_rules[${i}].min`, `does not apply to ${r.kind}`);
    if (r.min > 100) throw new InvalidFieldError(`spec.ready_rules[${i}].min`, 'must be at most 100');
  });
  spec.doneRules.forEach((r, i) => {
    if (!DONE_RULES.has(r.kind)) throw new InvalidFieldError(`spec.done_rules[${i}].kind`, `must be one of ${[...DONE_RULES].join(', ')}`);
  });
  spec.evidenceTargets.forEach((t, i) => {
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(t.artifact))
      throw new InvalidFieldError(`spec.evidence_targets[${i}].artifact`, 'must be a lowercase name (e.g. increment)');
    if (!EVIDENCE_FROM.has(t.from)) throw new InvalidFieldError(`spec.evidence_targets[${i}].from`, `must be one of ${[...EVIDENCE_FROM].join(', ')}`);
  });
  return spec;
}
