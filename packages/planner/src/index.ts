export * from './dag.js';
export { MAX_TIMEOUT_MS, parseDuration } from './duration.js';
export { type DependencyGraph, findCycle, findCycles, formatCycle, topologicalOrder } from './graph.js';
export * from './schema.js';
export {
  isValidModelName,
  type PlanSource,
  PlanValidationError,
  type Problem,
  parsePlan,
  validatePlan,
} from './validate.js';
