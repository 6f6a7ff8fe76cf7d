import type { ActionKind, Labels, Tier } from '@hermes-mesh/protocol';
import { parseDuration } from './duration.js';
import type { Complexity, Plan, PlanAction, Policy } from './schema.js';

/** Used when neither the action nor the plan's defaults give one; the coordinator's own default too. */
export const DEFAULT_TIMEOUT_MS = 10 * 60_000;
/** Three attempts in all, as the design's retry rule says. */
export const DEFAULT_RETRIES = 2;
export const DEFAULT_POLICY: Policy = 'local_preferred';

/** What placement must satisfy for one action. */
export interface Requirements {
  model?: string;
  provider?: string;
  complexity?: Complexity;
  minTier?: Tier;
  labels?: Labels;
}

export interface FlatAction {
  id: string;
  flowId: string;
  kind: ActionKind;
  description?: string;
  params: unknown;
  /** Plan ids of the actions it runs after. */
  dependsOn: string[];
  timeoutMs: number;
  retries: number;
  requires: Requirements;
}

export interface FlatPlan {
  goal: string;
  policy: Policy;
  flows: { id: string; persona: string; description?: string }[];
  /** In plan order: flow by flow, each flow's actions as written. */
  actions: FlatAction[];
}

/**
 * The plan as the coordinator consumes it: one list of actions with defaults applied and timeouts in ms.
 * Expects a validated plan (parsePlan); a timeout that does not parse here is a bug, hence the throw.
 */
export function flattenPlan(plan: Plan): FlatPlan {
  return {
    goal: plan.goal,
    policy: plan.policy ?? DEFAULT_POLICY,
    flows: plan.flows.map((flow) => ({
      id: flow.id,
      persona: flow.persona,
      ...(flow.description === undefined ? {} : { description: flow.description }),
    })),
    actions: plan.flows.flatMap((flow) => flow.actions.map((action) => flattenAction(plan, flow.id, action))),
  };
}

function flattenAction(plan: Plan, flowId: string, action: PlanAction): FlatAction {
  return {
    id: action.id,
    flowId,
    kind: action.kind as ActionKind,
    ...(action.description === undefined ? {} : { description: action.description }),
    params: action.params,
    dependsOn: [...new Set(action.after ?? [])],
    timeoutMs: timeoutMs(action.timeout ?? plan.defaults?.timeout),
    retries: action.retries ?? plan.defaults?.retries ?? DEFAULT_RETRIES,
    requires: requirementsOf(plan, action),
  };
}

function timeoutMs(timeout: string | number | undefined): number {
  if (timeout === undefined) return DEFAULT_TIMEOUT_MS;
  const parsed = parseDuration(timeout);
  if (!parsed.ok) throw new Error(`timeout ${parsed.message}: validate the plan first`);
  return parsed.ms;
}

/**
 * Only llm actions inherit the default model and provider: a sha256 builtin that "required" the plan's
 * model would wait for a node serving it, for nothing.
 */
function requirementsOf(plan: Plan, action: PlanAction): Requirements {
  const inheritsModel = action.kind === 'llm';
  const model = action.model ?? (inheritsModel ? plan.defaults?.model : undefined);
  const provider = action.provider ?? (inheritsModel ? plan.defaults?.provider : undefined);
  return {
    ...(model === undefined ? {} : { model }),
    ...(provider === undefined ? {} : { provider }),
    ...(action.complexity === undefined ? {} : { complexity: action.complexity }),
    ...(action.minTier === undefined ? {} : { minTier: action.minTier }),
    ...(action.labels === undefined ? {} : { labels: action.labels }),
  };
}
