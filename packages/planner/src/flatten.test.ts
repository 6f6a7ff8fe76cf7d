import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, flattenPlan } from './flatten.js';
import { parsePlan } from './validate.js';

const examples = join(import.meta.dirname, '../../../examples/plans');

describe('flattenPlan', () => {
  it('applies defaults, converts timeouts to ms and gives the default model only to llm actions', () => {
    const plan = parsePlan(readFileSync(join(examples, 'research-brief.yaml'), 'utf8'), 'research-brief.yaml');
    const flat = flattenPlan(plan);
    expect(flat.goal).toMatch(/^Write a one-page brief/);
    expect(flat.policy).toBe('cloud_preferred');
    expect(flat.flows).toEqual([
      { id: 'research', persona: 'Research Analyst' },
      { id: 'writing', persona: 'Editor' },
    ]);
    const byId = Object.fromEntries(flat.actions.map((a) => [a.id, a]));
    expect(byId['count-source']).toMatchObject({
      flowId: 'research',
      kind: 'builtin',
      timeoutMs: 10_000,
      retries: DEFAULT_RETRIES,
      requires: {},
      dependsOn: [],
    });
    expect(byId.summarize).toMatchObject({
      timeoutMs: 5 * 60_000,
      requires: { model: 'llama3.2:3b', provider: 'ollama', complexity: 'medium' },
    });
    expect(byId.critique).toMatchObject({
      dependsOn: ['summarize'],
      retries: 1,
      requires: { model: 'qwen2.5:7b-instruct', provider: 'ollama', complexity: 'high', minTier: 'STANDARD' },
    });
    expect(byId.brief).toMatchObject({
      flowId: 'writing',
      dependsOn: ['summarize', 'critique', 'count-source'],
      requires: { model: 'llama3.2:3b', labels: { zone: 'home' } },
    });
  });

  it('uses the built-in defaults when the plan gives none', () => {
    const plan = parsePlan(
      'goal: g\nflows:\n  - id: f\n    persona: P\n    actions:\n      - { id: a, kind: builtin, params: { name: noop }, timeout: 1500 }\n      - { id: b, kind: builtin, params: { name: noop }, after: [a, a] }\n',
      'p.yaml',
    );
    expect(flattenPlan(plan)).toEqual({
      goal: 'g',
      policy: 'local_preferred',
      flows: [{ id: 'f', persona: 'P' }],
      actions: [
        {
          id: 'a',
          flowId: 'f',
          kind: 'builtin',
          params: { name: 'noop' },
          dependsOn: [],
          timeoutMs: 1500,
          retries: 2,
          requires: {},
        },
        {
          id: 'b',
          flowId: 'f',
          kind: 'builtin',
          params: { name: 'noop' },
          dependsOn: ['a'],
          timeoutMs: DEFAULT_TIMEOUT_MS,
          retries: 2,
          requires: {},
        },
      ],
    });
  });
});
