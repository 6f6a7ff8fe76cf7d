import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dependencyCycles, planGraph, readyActions } from './dag.js';
import {
  criticalPath,
  type DependencyGraph,
  depths,
  findCycle,
  findCycles,
  stronglyConnectedComponents,
  topologicalOrder,
} from './graph.js';
import type { Plan } from './schema.js';
import { validatePlan } from './validate.js';

/**
 * A random DAG: node i may only depend on nodes with a smaller index, then the ids are shuffled so the
 * insertion order says nothing about the dependency order.
 */
const dagArbitrary = fc
  .integer({ min: 1, max: 40 })
  .chain((size) =>
    fc.tuple(
      fc.array(fc.array(fc.nat(), { maxLength: 5 }), { minLength: size, maxLength: size }),
      fc.shuffledSubarray(
        Array.from({ length: size }, (_, i) => `n${i}`),
        { minLength: size, maxLength: size },
      ),
    ),
  )
  .map(([picks, ids]) => {
    const entries = ids.map((id, i) => {
      const deps = i === 0 ? [] : picks[i]!.map((p) => ids[p % i]!);
      return [id, deps] as [string, string[]];
    });
    // Insertion order shuffled again, independently of the indices that define the edges.
    return new Map(entries.sort(([a], [b]) => a.localeCompare(b)));
  });

function edges(graph: DependencyGraph): [string, string][] {
  return [...graph].flatMap(([node, deps]) => deps.map((dep) => [node, dep] as [string, string]));
}

/** Adds an edge from a transitive dependency back to a node above it: a cycle, by construction. */
const cyclicArbitrary = dagArbitrary
  .filter((graph) => edges(graph).length > 0)
  .chain((graph) => fc.tuple(fc.constant(graph), fc.nat(), fc.array(fc.nat(), { minLength: 1, maxLength: 10 })))
  .map(([graph, start, walk]) => {
    const withDeps = [...graph.keys()].filter((node) => graph.get(node)!.length > 0);
    const top = withDeps[start % withDeps.length]!;
    let bottom = top;
    for (const step of walk) {
      const deps = graph.get(bottom)!;
      if (deps.length === 0) break;
      bottom = deps[step % deps.length]!;
    }
    const cyclic = new Map(graph);
    cyclic.set(bottom, [...graph.get(bottom)!, top]);
    return cyclic;
  });

function planFrom(graph: DependencyGraph, flows = 3): Plan {
  const ids = [...graph.keys()];
  return {
    goal: 'generated',
    flows: Array.from({ length: flows }, (_, f) => ({
      id: `flow-${f}`,
      persona: `Persona ${f}`,
      actions: ids
        .filter((_, i) => i % flows === f)
        .map((id) => ({ id, kind: 'builtin', params: { name: 'noop' }, after: [...graph.get(id)!] })),
    })).filter((flow) => flow.actions.length > 0),
  };
}

function isRealCycle(graph: DependencyGraph, cycle: readonly string[]): boolean {
  if (cycle.length < 2 || cycle[0] !== cycle.at(-1)) return false;
  return cycle.slice(0, -1).every((node, i) => graph.get(node)?.includes(cycle[i + 1]!));
}

describe('topologicalOrder', () => {
  it('puts every node once, after everything it depends on', () => {
    fc.assert(
      fc.property(dagArbitrary, (graph) => {
        const result = topologicalOrder(graph);
        if (!result.ok) return false;
        const position = new Map(result.order.map((node, i) => [node, i]));
        expect(result.order.length).toBe(graph.size);
        expect(position.size).toBe(graph.size);
        return edges(graph).every(([node, dep]) => position.get(dep)! < position.get(node)!);
      }),
    );
  });

  it('finds the injected cycle, and its path is a real cycle', () => {
    fc.assert(
      fc.property(cyclicArbitrary, (graph) => {
        const result = topologicalOrder(graph);
        return !result.ok && isRealCycle(graph, result.cycle);
      }),
    );
  });

  it('keeps insertion order among independent nodes', () => {
    const graph = new Map([
      ['c', []],
      ['a', ['c']],
      ['b', []],
    ]);
    expect(topologicalOrder(graph)).toEqual({ ok: true, order: ['c', 'b', 'a'] });
  });

  it('handles a 10,000-node chain without overflowing the stack', () => {
    const chain = new Map(Array.from({ length: 10_000 }, (_, i) => [`n${i}`, i === 0 ? [] : [`n${i - 1}`]]));
    chain.set('n0', ['n9999']);
    expect(findCycle(chain)).toHaveLength(10_001);
  });
});

describe('findCycles', () => {
  it('finds none in a DAG', () => {
    fc.assert(fc.property(dagArbitrary, (graph) => findCycles(graph).length === 0));
  });

  it('reports one real cycle per independent cycle', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['a']],
      ['c', ['d']],
      ['d', ['e']],
      ['e', ['c']],
      ['f', ['a', 'c']],
      ['g', ['g']],
    ]);
    expect(findCycles(graph)).toEqual([
      ['a', 'b', 'a'],
      ['c', 'd', 'e', 'c'],
      ['g', 'g'],
    ]);
  });

  it('partitions the nodes into components', () => {
    fc.assert(
      fc.property(cyclicArbitrary, (graph) => {
        const nodes = stronglyConnectedComponents(graph).flat();
        return nodes.length === graph.size && new Set(nodes).size === graph.size;
      }),
    );
  });
});

describe('plan DAG', () => {
  it('validatePlan reports a random plan with an injected back edge as a cycle, with a real path', () => {
    fc.assert(
      fc.property(cyclicArbitrary, (graph) => {
        const problems = validatePlan(planFrom(graph));
        const cycles = problems.filter((p) => p.message.startsWith('dependency cycle: '));
        expect(cycles.length).toBeGreaterThan(0);
        return cycles.every((p) => isRealCycle(graph, p.message.slice('dependency cycle: '.length).split(' -> ')));
      }),
    );
  });

  it('validatePlan accepts random DAG plans', () => {
    fc.assert(fc.property(dagArbitrary, (graph) => validatePlan(planFrom(graph)).length === 0));
  });

  it('running ready actions in rounds finishes every action once, in as many rounds as the critical path', () => {
    fc.assert(
      fc.property(dagArbitrary, (graph) => {
        const plan = planFrom(graph);
        const done = new Set<string>();
        let rounds = 0;
        for (let ready = readyActions(plan, done); ready.length > 0; ready = readyActions(plan, done)) {
          // Everything ready at once is independent: none waits for another in the same round.
          for (const id of ready) expect(graph.get(id)!.some((dep) => ready.includes(dep))).toBe(false);
          for (const id of ready) done.add(id);
          rounds++;
        }
        expect(done.size).toBe(graph.size);
        return rounds === planGraph(plan).criticalPath.length;
      }),
    );
  });

  it('the critical path is a chain of real dependencies as long as the deepest node', () => {
    fc.assert(
      fc.property(dagArbitrary, (graph) => {
        const result = topologicalOrder(graph);
        if (!result.ok) return false;
        const depth = depths(graph, result.order);
        const path = criticalPath(graph, depth);
        expect(path.length).toBe(Math.max(...depth.values()));
        return path.slice(1).every((node, i) => graph.get(node)!.includes(path[i]!));
      }),
    );
  });

  it('dependencyCycles is empty for every example-like DAG plan', () => {
    fc.assert(fc.property(dagArbitrary, (graph) => dependencyCycles(planFrom(graph)).length === 0));
  });
});
