import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ActionOutput, RecipeParams } from '@hermes-mesh/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { permanent, type RunResult } from './types.js';

/** prompts/{prompt_id}_{flow_id}_{action_id}.json: what an action produced, and what it was asked. */
export const ActionRecipe = Type.Object({
  promptId: Type.String(),
  flowId: Type.String(),
  actionId: Type.String(),
  kind: Type.String(),
  params: Type.Unknown(),
  output: Type.Object({ value: Type.Unknown(), summary: Type.String(), bytes: Type.Integer() }),
  savedAt: Type.Integer(),
});
export type ActionRecipe = Static<typeof ActionRecipe>;

/** prompts/{prompt_id}_{flow_id}_recipe.json: the flow's actions in order. */
export const FlowRecipe = Type.Object({
  promptId: Type.String(),
  flowId: Type.String(),
  persona: Type.String(),
  actions: Type.Array(
    Type.Object({ actionId: Type.String(), kind: Type.String(), dependsOn: Type.Array(Type.String()) }),
  ),
  savedAt: Type.Integer(),
});
export type FlowRecipe = Static<typeof FlowRecipe>;

/** prompts/{prompt_id}.json: the prompt (goal) itself. */
export const PromptRecipe = Type.Object({
  promptId: Type.String(),
  goal: Type.String(),
  flows: Type.Array(Type.String()),
  savedAt: Type.Integer(),
});
export type PromptRecipe = Static<typeof PromptRecipe>;

const checkAction = TypeCompiler.Compile(ActionRecipe);

const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_');

export function recipePaths(dataDir: string, promptId: string, flowId: string, actionId?: string) {
  const dir = join(dataDir, 'prompts');
  return {
    prompt: join(dir, `${safe(promptId)}.json`),
    flow: join(dir, `${safe(promptId)}_${safe(flowId)}_recipe.json`),
    action: actionId === undefined ? undefined : join(dir, `${safe(promptId)}_${safe(flowId)}_${safe(actionId)}.json`),
  };
}

/** Writes beside and renames: a crash never leaves half a recipe that a later REUSE would trust. */
async function writeAtomic(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}

export async function saveRecipe(
  dataDir: string,
  recipe: { prompt: PromptRecipe; flows: FlowRecipe[]; actions: ActionRecipe[] },
): Promise<string[]> {
  const written: string[] = [];
  for (const a of recipe.actions) {
    const path = recipePaths(dataDir, a.promptId, a.flowId, a.actionId).action!;
    await writeAtomic(path, a);
    written.push(path);
  }
  for (const f of recipe.flows) {
    const path = recipePaths(dataDir, f.promptId, f.flowId).flow;
    await writeAtomic(path, f);
    written.push(path);
  }
  const promptPath = recipePaths(dataDir, recipe.prompt.promptId, '').prompt;
  await writeAtomic(promptPath, recipe.prompt);
  written.push(promptPath);
  return written;
}

export async function loadActionRecipe(dataDir: string, p: RecipeParams): Promise<ActionRecipe | { error: string }> {
  const path = recipePaths(dataDir, p.promptId, p.flowId, p.actionId).action!;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { error: `no recipe at ${path}: run the goal in CREATE mode first, or copy the prompts/ directory here` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: `recipe ${path} is not JSON` };
  }
  if (!checkAction.Check(value)) return { error: `recipe ${path} is not a valid action recipe` };
  return value;
}

/** REUSE: the recorded output, replayed without an LLM call or any network. */
export async function runRecipe(dataDir: string, params: RecipeParams, inline?: ActionOutput): Promise<RunResult> {
  if (inline) return { ok: true, output: inline };
  const recipe = await loadActionRecipe(dataDir, params);
  if ('error' in recipe) return permanent('no-recipe', recipe.error);
  return { ok: true, output: recipe.output };
}
