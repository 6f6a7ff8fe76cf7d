import {
  criticalPath,
  type DependencyGraph,
  dependentsIndex,
  depths,
  findCycles,
  formatCycle,
  topologicalOrder,
} from './graph.js';
import type { Plan, PlanAction, PlanFlow } from './schema.js';

/** An action with where it sits in the plan, so problems can point at `/flows/i/actions/j`. */
export interface LocatedAction {
  action: PlanAction;
  flow: PlanFlow;
  flowIndex: number;
  actionIndex: number;
}

export function planActions(plan: Plan): LocatedAction[] {
  return plan.flows.flatMap((flow, flowIndex) =>
    flow.actions.map((action, actionIndex) => ({ action, flow, flowIndex, actionIndex })),
  );
}

/** Action id -> the ids it runs after, in plan order. */
export function dependencyGraph(plan: Plan): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const { action } of planActions(plan)) {
    graph.set(action.id, [...(graph.get(action.id) ?? []), ...(action.after ?? [])]);
  }
  return graph;
}

export interface PlanGraph {
  dependencies: DependencyGraph;
  /** Every action once, each after all it depends on. */
  order: string[];
  /** 1 for an action with no dependencies, else 1 + its deepest dependency's depth. */
  depth: ReadonlyMap<string, number>;
  /** The longest chain of actions that must run one after another, first to last. */
  criticalPath: string[];
  dependents: ReadonlyMap<string, readonly string[]>;
}

/** The DAG of a validated plan. A cycle here means the plan skipped validation: a bug, hence the throw. */
export function planGraph(plan: Plan): PlanGraph {
  const dependencies = dependencyGraph(plan);
  const sorted = topologicalOrder(dependencies);
  if (!sorted.ok) throw new Error(`plan has a dependency cycle (${formatCycle(sorted.cycle)}): validate it first`);
  const depth = depths(dependencies, sorted.order);
  return {
    dependencies,
    order: sorted.order,
    depth,
    criticalPath: criticalPath(dependencies, depth),
    dependents: dependentsIndex(dependencies),
  };
}

/**
 * Actions that can start now: not done, and everything they run after is done. They are independent of each
 * other, so all of them may run in parallel; plan order is kept so placement is deterministic.
 */
export function readyActions(plan: Plan, done: ReadonlySet<string>): string[] {
  return planActions(plan)
    .map(({ action }) => action)
    .filter((action) => !done.has(action.id) && (action.after ?? []).every((dep) => done.has(dep)))
    .map((action) => action.id);
}

/** Actions that run directly after `actionId`. */
export function dependentsOf(plan: Plan, actionId: string): string[] {
  return dependentsIndex(dependencyGraph(plan)).get(actionId) ?? [];
}

/** Every action that waits for `actionId`, directly or not: what a failure or a cancel of it holds up. */
export function transitiveDependentsOf(plan: Plan, actionId: string): string[] {
  const index = dependentsIndex(dependencyGraph(plan));
  const found = new Set<string>();
  const queue = [...(index.get(actionId) ?? [])];
  for (let node = queue.shift(); node !== undefined; node = queue.shift()) {
    if (found.has(node)) continue;
    found.add(node);
    queue.push(...(index.get(node) ?? []));
  }
  return [...found];
}

/** How many actions the longest dependency chain holds: the fewest rounds a run can take. */
export function criticalPathLength(plan: Plan): number {
  return planGraph(plan).criticalPath.length;
}

/** Every dependency cycle, one per strongly connected group of actions. */
export function dependencyCycles(plan: Plan): string[][] {
  return findCycles(dependencyGraph(plan));
}
