import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createFakeOpenAIServer, type FakeOpenAIServer } from '@hermes-mesh/executor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMesh, type TestMesh, tempDir } from './support/daemons.js';
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

/** What the verifier model answers about a failed action: hash the text in-process instead. */
const VERDICT = {
  decision: 'replace',
  reason: 'the file is not there; hash the greeting itself',
  action: { id: 'hash', kind: 'builtin', params: { name: 'sha256', input: { text: 'hello mesh' } }, after: null },
};

describe('free-text goals: the coordinator asks its planner model for a plan', () => {
  let llm: FakeOpenAIServer;
  let mesh: TestMesh;
  beforeAll(async () => {
    // One endpoint, two models: the planner writes plans, the verifier judges failed actions.
    llm = await createFakeOpenAIServer({
      fallback: (body) => ({ content: JSON.stringify(body.model === 'judge' ? VERDICT : PLAN) }),
    });
    mesh = await startMesh(1, [], {
      HERMES_LLM_URL: llm.url,
      HERMES_LLM_MODEL: 'planner-model',
      HERMES_VERIFIER_MODEL: 'judge',
    });
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

  it('submit --autonomous: a failed action is replaced by the verifier model, and the goal completes', async () => {
    const planFile = join(tempDir(), 'broken.json');
    const broken = structuredClone(PLAN);
    broken.flows[0]!.actions[0]!.params = { name: 'sha256', input: { file: 'no-such-file.txt' } } as never;
    writeFileSync(planFile, JSON.stringify({ ...broken, defaults: { retries: 0 } }));
    const coordBin = resolve(import.meta.dirname, '../packages/coordinator/bin/hermes-coord.js');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [coordBin, '--api', mesh.coord.api, 'submit', '--plan', planFile, '--autonomous'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(stdout).toMatch(/hash\s+FALLBACK_REQUESTED\s+\(autonomous: asking the verifier model judge/);
    expect(stdout).toMatch(/hash\s+FALLBACK_RECEIVED.*verifier judge: the file is not there/);
    expect(stdout).toMatch(/goal g[0-9a-f]+ COMPLETED/);
    const verifierCall = llm.requests.find((r) => r.body.model === 'judge')!;
    expect(JSON.stringify(verifierCall.body.messages)).toMatch(/no-such-file\.txt/);
  });
});
