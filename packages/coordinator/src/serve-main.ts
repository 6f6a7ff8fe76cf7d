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

/** HERMES_LLM_URL (OpenAI-compatible, e.g. http://127.0.0.1:11434/v1), HERMES_LLM_MODEL, HERMES_LLM_API_KEY. */
function plannerFromEnv() {
  const baseUrl = process.env.HERMES_LLM_URL;
  const model = process.env.HERMES_LLM_MODEL;
  if (!baseUrl || !model) return {};
  const apiKey = process.env.HERMES_LLM_API_KEY;
  return { planner: { baseUrl, model, ...(apiKey ? { apiKey } : {}) } };
}
