/**
 * Dependency graphs as plain maps: node -> the nodes it waits for. Pure functions, no plan types, so the
 * property tests can drive them with arbitrary graphs. Dependencies on nodes that are not keys are ignored
 * here (validation reports them as unknown).
 */
export type DependencyGraph = ReadonlyMap<string, readonly string[]>;

export type TopologicalResult = { ok: true; order: string[] } | { ok: false; cycle: string[] };

function knownDependencies(graph: DependencyGraph, node: string): string[] {
  return (graph.get(node) ?? []).filter((dep) => graph.has(dep));
}

/** Dependencies before dependents; ties keep the graph's insertion order, so the result is deterministic. */
export function topologicalOrder(graph: DependencyGraph): TopologicalResult {
  const waitingOn = new Map<string, number>();
  const dependents = dependentsIndex(graph);
  for (const node of graph.keys()) waitingOn.set(node, new Set(knownDependencies(graph, node)).size);
  const order = [...graph.keys()].filter((node) => waitingOn.get(node) === 0);
  for (let i = 0; i < order.length; i++) {
    for (const dependent of dependents.get(order[i]!) ?? []) {
      const left = waitingOn.get(dependent)! - 1;
      waitingOn.set(dependent, left);
      if (left === 0) order.push(dependent);
    }
  }
  if (order.length === graph.size) return { ok: true, order };
  return { ok: false, cycle: findCycle(graph)! };
}

/** node -> the nodes that wait for it directly, each listed once, in insertion order. */
export function dependentsIndex(graph: DependencyGraph): Map<string, string[]> {
  const index = new Map<string, string[]>([...graph.keys()].map((node) => [node, []]));
  for (const [node, deps] of graph) {
    for (const dep of new Set(deps)) index.get(dep)?.push(node);
  }
  return index;
}

/**
 * Tarjan's strongly connected components, iterative so a 10,000-action chain cannot overflow the stack.
 * Every cycle lies inside one component, so one cycle per cyclic component reports each independent cycle once.
 */
export function stronglyConnectedComponents(graph: DependencyGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
  };
  for (const root of graph.keys()) {
    if (index.has(root)) continue;
    visit(root);
    const frames = [{ node: root, deps: knownDependencies(graph, root), next: 0 }];
    while (frames.length > 0) {
      const frame = frames.at(-1)!;
      if (frame.next < frame.deps.length) {
        const dep = frame.deps[frame.next++]!;
        if (!index.has(dep)) {
          visit(dep);
          frames.push({ node: dep, deps: knownDependencies(graph, dep), next: 0 });
        } else if (onStack.has(dep)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(dep)!));
        }
        continue;
      }
      frames.pop();
      const parent = frames.at(-1);
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) components.push(popComponent(stack, onStack, frame.node));
    }
  }
  return components;
}

function popComponent(stack: string[], onStack: Set<string>, root: string): string[] {
  const component: string[] = [];
  let node: string;
  do {
    node = stack.pop()!;
    onStack.delete(node);
    component.push(node);
  } while (node !== root);
  return component;
}

/**
 * One cycle per cyclic component, as a path that returns to its start: ['a', 'b', 'c', 'a'] means a waits
 * for b, b for c, and c for a. Each starts at the component's first node in graph order, and is the shortest
 * cycle through it.
 */
export function findCycles(graph: DependencyGraph): string[][] {
  const position = new Map([...graph.keys()].map((node, i) => [node, i]));
  return stronglyConnectedComponents(graph)
    .filter((component) => component.length > 1 || knownDependencies(graph, component[0]!).includes(component[0]!))
    .map((component) => {
      const start = component.reduce((a, b) => (position.get(a)! <= position.get(b)! ? a : b));
      return shortestCycleThrough(graph, start, new Set(component));
    })
    .sort((a, b) => position.get(a[0]!)! - position.get(b[0]!)!);
}

export function findCycle(graph: DependencyGraph): string[] | undefined {
  return findCycles(graph)[0];
}

/** Breadth-first from `start` along dependencies inside its component, until an edge leads back to it. */
function shortestCycleThrough(graph: DependencyGraph, start: string, component: ReadonlySet<string>): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i]!;
    for (const dep of knownDependencies(graph, node)) {
      if (dep === start) return [...pathTo(cameFrom, start, node), start];
      if (!component.has(dep) || cameFrom.has(dep)) continue;
      cameFrom.set(dep, node);
      queue.push(dep);
    }
  }
  throw new Error(`no cycle through ${start}: it is not in a cyclic component`);
}

function pathTo(cameFrom: ReadonlyMap<string, string>, start: string, end: string): string[] {
  const path = [end];
  while (path[0] !== start) path.unshift(cameFrom.get(path[0]!)!);
  return path;
}

/** Depth of each node: 1 without dependencies, else 1 + the deepest dependency. `order` must be topological. */
export function depths(graph: DependencyGraph, order: readonly string[]): Map<string, number> {
  const depth = new Map<string, number>();
  for (const node of order) {
    const deepest = Math.max(0, ...knownDependencies(graph, node).map((dep) => depth.get(dep)!));
    depth.set(node, deepest + 1);
  }
  return depth;
}

/** The longest chain of nodes that must run one after another, first to last: what bounds the run time. */
export function criticalPath(graph: DependencyGraph, depth: ReadonlyMap<string, number>): string[] {
  let last: string | undefined;
  for (const [node, d] of depth) if (last === undefined || d > depth.get(last)!) last = node;
  if (last === undefined) return [];
  const path = [last];
  for (let node = last; depth.get(node)! > 1; path.unshift(node)) {
    node = knownDependencies(graph, node).find((dep) => depth.get(dep) === depth.get(node)! - 1)!;
  }
  return path;
}

export function formatCycle(cycle: readonly string[]): string {
  return cycle.join(' -> ');
}
