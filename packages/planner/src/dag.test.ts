import { describe, expect, it } from 'vitest';
import {
  criticalPathLength,
  dependentsOf,
  parsePlan,
  planGraph,
  readyActions,
  transitiveDependentsOf,
} from './index.js';

const plan = parsePlan(
  `goal: two flows that meet
flows:
  - id: left
    persona: A
    actions:
      - { id: a1, kind: builtin, params: { name: noop } }
      - { id: a2, kind: builtin, params: { name: noop }, after: [a1] }
  - id: right
    persona: B
    actions:
      - { id: b1, kind: builtin, params: { name: noop } }
      - { id: join, kind: builtin, params: { name: noop }, after: [a2, b1] }
      - { id: tail, kind: builtin, params: { name: noop }, after: [join] }
`,
  'dag.yaml',
);

describe('plan DAG functions', () => {
  it('orders dependencies first', () => {
    expect(planGraph(plan).order).toEqual(['a1', 'b1', 'a2', 'join', 'tail']);
  });

  it('releases independent actions together and dependent ones in order', () => {
    expect(readyActions(plan, new Set())).toEqual(['a1', 'b1']);
    expect(readyActions(plan, new Set(['a1']))).toEqual(['a2', 'b1']);
    expect(readyActions(plan, new Set(['a1', 'a2']))).toEqual(['b1']);
    expect(readyActions(plan, new Set(['a1', 'a2', 'b1']))).toEqual(['join']);
    expect(readyActions(plan, new Set(['a1', 'a2', 'b1', 'join', 'tail']))).toEqual([]);
  });

  it('lists dependents, direct and transitive', () => {
    expect(dependentsOf(plan, 'a2')).toEqual(['join']);
    expect(dependentsOf(plan, 'tail')).toEqual([]);
    expect(transitiveDependentsOf(plan, 'a1').sort()).toEqual(['a2', 'join', 'tail']);
  });

  it('measures depth and the critical path across flows', () => {
    const graph = planGraph(plan);
    expect(Object.fromEntries(graph.depth)).toEqual({ a1: 1, a2: 2, b1: 1, join: 3, tail: 4 });
    expect(graph.criticalPath).toEqual(['a1', 'a2', 'join', 'tail']);
    expect(criticalPathLength(plan)).toBe(4);
  });

  it('refuses a cyclic plan that skipped validation', () => {
    const cyclic = structuredClone(plan);
    cyclic.flows[0]!.actions[0]!.after = ['tail'];
    expect(() => planGraph(cyclic)).toThrow('dependency cycle (a1 -> tail -> join -> a2 -> a1)');
  });
});
