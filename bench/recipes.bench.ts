// REUSE vs CREATE: the same llm goal, first run through a model (a fake OpenAI-compatible server answering in
// 300 ms, a fast local model's pace), then replayed from its recipes with no model call.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFakeOpenAIServer } from '@hermes-mesh/executor';
import { type DaemonProcess, startMesh, tempDir } from '../test/support/daemons.js';
import { waitFor } from '../test/support/wait.js';
import { report } from './report.js';

const llm = await createFakeOpenAIServer({ fallback: () => ({ content: 'a considered answer', delayMs: 300 }) });
const config = join(tempDir(), 'worker.yaml');
writeFileSync(config, `providers:\n  - { name: local, baseUrl: "${llm.url}", defaultModel: "qwen2.5:7b" }\n`);
const mesh = await startMesh(1, ['--config', config]);
const { coord } = mesh;

const goal = {
  goal: 'research brief: outline, draft, summary',
  flows: [{ id: 'brief', persona: 'Research Analyst' }],
  actions: ['outline', 'draft', 'summary'].map((id, i, all) => ({
    id,
    flowId: 'brief',
    kind: 'llm',
    params: { prompt: `${id} the brief` },
    dependsOn: i === 0 ? [] : [all[i - 1]!],
  })),
};

async function run(c: DaemonProcess): Promise<{ ms: number; mode: string; goalId: string }> {
  const t0 = performance.now();
  const { goalId, mode } = await c.post<{ goalId: string; mode: string }>('/v1/goals', goal);
  await waitFor(
    async () => (await c.get<{ state: string }>(`/v1/goals/${goalId}`)).state === 'COMPLETED',
    goalId,
    30_000,
    5,
  );
  return { ms: performance.now() - t0, mode, goalId };
}

try {
  const create = await run(coord);
  const calls = llm.requests.length;
  // Recipes are written just after the goal completes (then recipe.saved lands in the ledger): replay after that.
  await waitFor(
    async () => (await coord.get<{ recipes: unknown[] }>(`/v1/goals/${create.goalId}`)).recipes.length > 0,
    'recipes saved',
  );
  const reuse = await run(coord);
  if (reuse.mode !== 'reuse' || llm.requests.length !== calls) {
    throw new Error(`REUSE did not replay (mode ${reuse.mode})`);
  }
  report('recipes', 'create_ms', create.ms, 'ms', { llmActions: 3, modelLatencyMs: 300 });
  report('recipes', 'reuse_ms', reuse.ms, 'ms', { llmCalls: 0 });
  report('recipes', 'reuse_speedup', create.ms / reuse.ms, 'x', { goal: '>= 10x' });
} finally {
  await mesh.stop();
  await llm.close();
}
