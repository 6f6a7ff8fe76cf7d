export { type ApiClient, ApiError, createApiClient, EXIT } from './client.js';
export { formatAgo, formatBytes, formatTable } from './format.js';
export { formatNodes, type PeerView } from './nodes.js';
export { schedulerPlacer } from './placer.js';
export { loadPlanFile, type Overrides, withOverrides } from './plan.js';
export { actionView, registerRoutes } from './routes.js';
export { coordinatorPlugin } from './serve.js';
export {
  type Coordinator,
  type CoordinatorInit,
  createCoordinator,
  type NodeView,
  type PlacementRequest,
  type Placer,
} from './service.js';
export { ActionSpec, GoalRequest, ledgerActionId, Policy, Requirements } from './spec.js';
export { readSse, type SseEvent } from './sse.js';
