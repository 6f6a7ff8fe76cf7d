import { main as daemonMain } from '@hermes-mesh/daemon';
import { rankMeshModels } from '@hermes-mesh/scheduler';
import { schedulerPlacer } from './placer.js';
import { coordinatorPlugin } from './serve.js';

/** `hermes-coord serve [hermesd flags]`: a mesh node with the coordinator mounted on its API. */
export async function serve(flags: string[]): Promise<void> {
  await daemonMain(['node', 'hermes-coord serve', ...flags], {
    name: 'hermes-coord serve',
    description: 'hermes-mesh coordinator: a mesh node that takes goals and places their actions',
    startOptions: () => ({
      plugins: [
        coordinatorPlugin({
          place: schedulerPlacer(),
          models: (adverts) => rankMeshModels(adverts as Parameters<typeof rankMeshModels>[0]),
          ...plannerFromEnv(),
        }),
      ],
    }),
  });
}

/**
 * HERMES_LLM_URL (OpenAI-compatible, e.g. http://127.0.0.1:11434/v1), HERMES_LLM_MODEL, HERMES_LLM_API_KEY: the
 * planner of free-text goals and, unless HERMES_VERIFIER_MODEL names another model there, the verifier of
 * autonomous goals.
 */
function plannerFromEnv() {
  const baseUrl = process.env.HERMES_LLM_URL;
  const model = process.env.HERMES_LLM_MODEL;
  if (!baseUrl || !model) return {};
  const apiKey = process.env.HERMES_LLM_API_KEY;
  const endpoint = { baseUrl, ...(apiKey ? { apiKey } : {}) };
  return {
    planner: { ...endpoint, model },
    verifier: { ...endpoint, model: process.env.HERMES_VERIFIER_MODEL || model },
  };
}
