/**
 * Plans: a goal broken into flows (one persona each) and actions with dependencies. Read from files
 * (parsePlan), checked (validatePlan), written back (savePlan), made by a model (decomposeGoal), walked as a
 * DAG (planGraph, readyActions) and handed to the coordinator flat (flattenPlan).
 */
export {
  criticalPathLength,
  dependencyCycles,
  dependencyGraph,
  dependentsOf,
  type LocatedAction,
  type PlanGraph,
  planActions,
  planGraph,
  readyActions,
  transitiveDependentsOf,
} from './dag.js';
export { type DecomposeOptions, type DecomposeResult, decomposeGoal, plannerSystemPrompt } from './decompose.js';
export { type DurationResult, MAX_TIMEOUT_MS, parseDuration } from './duration.js';
export {
  checkFallbackReply,
  type FailedAction,
  type FallbackOptions,
  type FallbackProposal,
  proposeFallback,
} from './fallback.js';
export {
  DEFAULT_POLICY,
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_MS,
  type FlatAction,
  type FlatPlan,
  flattenPlan,
  type Requirements,
} from './flatten.js';
export {
  criticalPath,
  type DependencyGraph,
  depths,
  findCycle,
  findCycles,
  formatCycle,
  type TopologicalResult,
  topologicalOrder,
} from './graph.js';
export type { ModelEndpoint } from './model-call.js';
export { dropNulls, fallbackResponseSchema, planResponseSchema } from './response-schema.js';
export { savePlan, stringifyPlan } from './save.js';
export * from './schema.js';
export {
  isValidModelName,
  type PlanSource,
  PlanValidationError,
  type Problem,
  parsePlan,
  validatePlan,
} from './validate.js';
