import { existsSync, readFileSync } from 'node:fs';
import { createFakeOpenAIServer, type FakeOpenAIServer } from '@hermes-mesh/executor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMesh, type TestMesh } from './support/daemons.js';
import { waitFor } from './support/wait.js';

/** What a planner model answers: a plan in the plan-file schema, as JSON. */
const PLAN = {
  goal: 'fingerprint a greeting',
  policy: 'local_preferred',
  flows: [
    {
      id: 'work',
      persona: 'Integrity Checker',
      actions: [
        { id: 'hash', kind: 'builtin', params: { name: 'sha256', input: { text: 'hello mesh' } } },
        {
          id: 'count',
          kind: 'builtin',
          after: ['hash'],
          params: { name: 'wordcount', input: { fromActions: ['hash'] } },
        },
      ],
    },
  ],
};

describe('free-text goals: the coordinator asks its planner model for a plan', () => {
  let llm: FakeOpenAIServer;
  let mesh: TestMesh;
  beforeAll(async () => {
    llm = await createFakeOpenAIServer({ fallback: () => ({ content: JSON.stringify(PLAN) }) });
    mesh = await startMesh(1, [], { HERMES_LLM_URL: llm.url, HERMES_LLM_MODEL: 'planner-model' });
  });
  afterAll(async () => {
    await mesh?.stop();
    await llm?.close();
  });

  it('decomposes the text into a validated plan, saves it for editing, and runs it', async () => {
    const { goalId, planFile } = await mesh.coord.post<{ goalId: string; planFile: string }>('/v1/goals', {
      text: 'fingerprint a greeting',
    });
    expect(llm.requests.at(-1)!.body).toMatchObject({
      model: 'planner-model',
      response_format: { type: 'json_schema' },
    });
    expect(existsSync(planFile)).toBe(true);
    expect(readFileSync(planFile, 'utf8')).toMatch(/id: hash/);
    const goal = await waitFor(
      async () => {
        const g = await mesh.coord.get<{ state: string; actions: Array<{ planId: string; state: string }> }>(
          `/v1/goals/${goalId}`,
        );
        return g.state === 'ACTIVE' ? undefined : g;
      },
      'the decomposed goal to finish',
      20_000,
    );
    expect(goal.state).toBe('COMPLETED');
    expect(goal.actions.map((a) => a.planId).sort()).toEqual(['count', 'hash']);
  });
});
