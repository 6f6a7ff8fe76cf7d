import { readFile } from 'node:fs/promises';
import { type FlatPlan, flattenPlan, PlanValidationError, parsePlan } from '@hermes-mesh/planner';
import { ApiError, EXIT } from './client.js';
import type { GoalRequest } from './spec.js';

/** Reads and checks a plan file (the planner's format); every problem names file, line and field. */
export async function loadPlanFile(path: string): Promise<GoalRequest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ApiError(`cannot read plan ${path}: ${(err as Error).message}`, EXIT.badInput);
  }
  try {
    return goalRequestOf(flattenPlan(parsePlan(text, path)));
  } catch (err) {
    if (err instanceof PlanValidationError) throw new ApiError(`invalid plan:\n${err.message}`, EXIT.badInput);
    throw err;
  }
}

/** The planner's flat plan is the API's goal request, field for field. */
export function goalRequestOf(plan: FlatPlan): GoalRequest {
  return {
    goal: plan.goal,
    policy: plan.policy,
    flows: plan.flows,
    actions: plan.actions.map((a) => ({ ...a, requires: { ...a.requires } })),
  };
}

export interface Overrides {
  policy?: 'local_preferred' | 'cloud_preferred';
  provider?: string;
  model?: string;
  reasoningEffort?: 'low' | 'medium' | 'high';
}

/** Per-call overrides win over the plan: provider, model and reasoning effort of every llm action, and the policy. */
export function withOverrides(request: GoalRequest, o: Overrides): GoalRequest {
  const llm = o.provider !== undefined || o.model !== undefined || o.reasoningEffort !== undefined;
  return {
    ...request,
    ...(o.policy ? { policy: o.policy } : {}),
    actions: request.actions.map((a) => {
      if (!llm || a.kind !== 'llm') return a;
      const requires = { ...(a.requires ?? {}) };
      if (o.provider !== undefined) {
        requires.provider = o.provider;
        // A provider override without a model must not inherit a model that provider may not have.
        if (o.model === undefined) delete requires.model;
      }
      if (o.model !== undefined) requires.model = o.model;
      if (o.reasoningEffort !== undefined) requires.reasoningEffort = o.reasoningEffort;
      return { ...a, requires };
    }),
  };
}
