import { BUILTINS, type BuiltinName } from '@hermes-mesh/protocol';
import { askUntilValid, type Checked, type ModelEndpoint, parseReply } from './model-call.js';
import { dropNulls, planResponseSchema } from './response-schema.js';
import { COMPLEXITIES, type Plan } from './schema.js';
import { PlanValidationError, type Problem, parsePlan } from './validate.js';

export interface DecomposeOptions extends ModelEndpoint {
  /** Personas the planner should prefer for its flows (e.g. "Research Analyst", "Code Writer"). */
  personas?: string[];
  /** Commands the nodes allow for exec actions; without them the model is told to avoid exec. */
  execCommands?: string[];
  /** Models some node serves, so llm actions can name one. */
  models?: string[];
}

export type DecomposeResult =
  | { ok: true; plan: Plan; attempts: number }
  /** The model never produced a valid plan (`problems` are the last reply's), or the endpoint refused. */
  | { ok: false; problems: Problem[]; attempts: number };

/**
 * Asks a model to break a free-text goal into a plan, and holds its answer to the same rules as a plan file.
 * An invalid answer is sent back with its problems until it is valid or `maxAttempts` calls are spent.
 * Rejects only when `signal` aborts.
 */
export async function decomposeGoal(goalText: string, options: DecomposeOptions): Promise<DecomposeResult> {
  const result = await askUntilValid(
    [
      { role: 'system', content: plannerSystemPrompt(options) },
      { role: 'user', content: `Goal:\n${goalText}` },
    ],
    { name: 'hermes_plan', schema: planResponseSchema() },
    (content, attempt) => checkPlanReply(content, `model reply ${attempt}`),
    options,
  );
  return result.ok
    ? { ok: true, plan: result.value, attempts: result.attempts }
    : { ok: false, problems: result.problems, attempts: result.attempts };
}

/** The reply as a plan file would be read: JSON is YAML, so parsePlan gives the same problems a file would. */
export function checkPlanReply(content: string, source: string): Checked<Plan> {
  const parsed = parseReply(content, source);
  if (!parsed.ok) return parsed;
  // Re-printed without the nulls, so the line numbers in the problems match the text fed back.
  const text = JSON.stringify(dropNulls(parsed.value), null, 2);
  try {
    return { ok: true, value: parsePlan(text, source), text };
  } catch (error) {
    if (error instanceof PlanValidationError) return { ok: false, problems: error.problems, text };
    throw error;
  }
}

/** Typed by BuiltinName, so a builtin added to the protocol fails the build until it is described here. */
const BUILTIN_DESCRIPTIONS: Record<BuiltinName, string> = {
  noop: 'does nothing; a join point',
  sleep: 'waits `ms` milliseconds',
  sha256: 'hex SHA-256 of its input',
  gzip: 'gzip-compresses its input',
  gunzip: "decompresses gzip input, e.g. a gzip action's output",
  wordcount: 'counts the words of its input',
  concat: 'joins its inputs in order',
};

/** Explains the plan model so a model can write one; the JSON schema alone says shapes, not meaning. */
export function plannerSystemPrompt(options: Pick<DecomposeOptions, 'personas' | 'execCommands' | 'models'>): string {
  const lines = [
    'You are the planner of hermes-mesh, a mesh of machines that runs AI-agent work in parallel.',
    "Break the user's goal into a plan and reply with JSON only, matching the given schema.",
    '',
    'A plan has a `goal` (restate it) and `flows`. A flow is one persona\'s part of the work (e.g. "Research',
    'Analyst", "Code Writer"), with an `id` and a list of `actions`. An action is the smallest unit one machine',
    'runs. Action ids are unique across the whole plan and use only letters, digits, `_`, `.` and `-`.',
    'An action runs after every action listed in its `after` (ids from any flow); actions that do not depend on',
    "each other run in parallel, so only add a dependency when an action needs another's result. The",
    'dependencies must not form a cycle.',
    '',
    ...actionKindsHelp(options),
    '',
    'Timeouts are durations such as "30s" or "5m". Leave optional fields null unless they matter.',
  ];
  if (options.personas?.length) lines.push(`Prefer these personas for flows: ${options.personas.join(', ')}.`);
  if (options.models?.length) lines.push(`Models available for llm actions: ${options.models.join(', ')}.`);
  return lines.join('\n');
}

/** What each action kind does and takes, for a model that writes actions (the planner, a verifier). */
export function actionKindsHelp(options: Pick<DecomposeOptions, 'execCommands'>): string[] {
  const builtins = BUILTINS.map((name) => `  - ${name}: ${BUILTIN_DESCRIPTIONS[name]}`).join('\n');
  return [
    'Action kinds and their params:',
    '- llm: a model call. params: { prompt, system?, temperature?, maxTokens?, reasoningEffort? }.',
    `  Set complexity (${COMPLEXITIES.join(', ')}) so a capable enough model is chosen.`,
    '- builtin: in-process work, no model. params: { name, input?, ms? } with name one of:',
    builtins,
    '  input is one of: { text }, { base64 }, { file } (a path relative to the inputs root), or',
    '  { fromActions: [ids] } whose outputs are the input; every id in fromActions must also be in `after`.',
    options.execCommands?.length
      ? `- exec: a command from the allowlist (${options.execCommands.join(', ')}). params: { command, args?, stdin? }.`
      : "- exec: a command from the nodes' allowlist; none is known here, so do not use exec.",
    '- recipe: replay of a saved recipe. params: { promptId, flowId, actionId }. Only use ids you were given.',
  ];
}
