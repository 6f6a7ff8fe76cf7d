import { BUILTINS, type BuiltinName } from '@hermes-mesh/protocol';
import { dropNulls, planResponseSchema } from './response-schema.js';
import { COMPLEXITIES, type Plan } from './schema.js';
import { PlanValidationError, type Problem, parsePlan } from './validate.js';

export interface DecomposeOptions {
  /** OpenAI-compatible base URL, including its version path: `http://127.0.0.1:11434/v1`. */
  baseUrl: string;
  apiKey?: string;
  model: string;
  /** Model calls in all, the first included; each retry carries the previous reply's problems. Default 3. */
  maxAttempts?: number;
  fetch?: typeof globalThis.fetch;
  signal?: AbortSignal;
  /** Personas the planner should prefer for its flows (e.g. "Research Analyst", "Code Writer"). */
  personas?: string[];
  /** Commands the nodes allow for exec actions; without them the model is told to avoid exec. */
  execCommands?: string[];
  /** Models some node serves, so llm actions can name one. */
  models?: string[];
  temperature?: number;
}

export type DecomposeResult =
  | { ok: true; plan: Plan; attempts: number }
  /** The model never produced a valid plan (`problems` are the last reply's), or the endpoint refused. */
  | { ok: false; problems: Problem[]; attempts: number };

type ChatMessage = { role: 'system' | 'user' | 'assistant'; content: string };
type ReplyResult = { ok: true; plan: Plan; text: string } | { ok: false; problems: Problem[]; text: string };

/**
 * Asks a model to break a free-text goal into a plan, and holds its answer to the same rules as a plan file.
 * An invalid answer is sent back with its problems until it is valid or `maxAttempts` calls are spent.
 * Rejects only when `signal` aborts.
 */
export async function decomposeGoal(goalText: string, options: DecomposeOptions): Promise<DecomposeResult> {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  const messages: ChatMessage[] = [
    { role: 'system', content: plannerSystemPrompt(options) },
    { role: 'user', content: `Goal:\n${goalText}` },
  ];
  let problems: Problem[] = [];
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const completion = await requestCompletion(messages, options);
    if (!completion.ok) return { ok: false, problems: [endpointProblem(completion.message)], attempts: attempt };
    const reply = checkReply(completion.content, `model reply ${attempt}`);
    if (reply.ok) return { ok: true, plan: reply.plan, attempts: attempt };
    problems = reply.problems;
    messages.push({ role: 'assistant', content: reply.text }, { role: 'user', content: problemsFeedback(problems) });
  }
  return { ok: false, problems, attempts: maxAttempts };
}

/** The reply as a plan file would be read: JSON is YAML, so parsePlan gives the same problems a file would. */
function checkReply(content: string, source: string): ReplyResult {
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch (error) {
    const message = `the reply is not JSON: ${(error as Error).message}`;
    return { ok: false, text: content, problems: [{ file: source, line: 0, column: 0, field: '', message }] };
  }
  // Re-printed without the nulls, so the line numbers in the problems match the text fed back.
  const text = JSON.stringify(dropNulls(value), null, 2);
  try {
    return { ok: true, plan: parsePlan(text, source), text };
  } catch (error) {
    if (error instanceof PlanValidationError) return { ok: false, problems: error.problems, text };
    throw error;
  }
}

function problemsFeedback(problems: Problem[]): string {
  return [
    'That plan is not valid. Problems (field path, then what is wrong):',
    ...problems.map((p) => `- ${p.field || '(whole reply)'}${p.line > 0 ? ` (line ${p.line})` : ''}: ${p.message}`),
    'Reply with the whole corrected plan as JSON.',
  ].join('\n');
}

function endpointProblem(message: string): Problem {
  return { file: 'model endpoint', line: 0, column: 0, field: '', message };
}

type CompletionResult = { ok: true; content: string } | { ok: false; message: string };

async function requestCompletion(messages: ChatMessage[], options: DecomposeOptions): Promise<CompletionResult> {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const body = {
    model: options.model,
    messages,
    ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
    response_format: {
      type: 'json_schema',
      json_schema: { name: 'hermes_plan', schema: planResponseSchema(), strict: true },
    },
  };
  let response: Response;
  try {
    response = await fetchImpl(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
      },
      body: JSON.stringify(body),
      signal: options.signal,
    });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    return { ok: false, message: `cannot reach ${url}: ${(error as Error).message}` };
  }
  const text = await response.text();
  if (!response.ok) return { ok: false, message: `${url} answered ${response.status}: ${text.slice(0, 500)}` };
  return completionContent(text, url);
}

function completionContent(text: string, url: string): CompletionResult {
  let reply: { choices?: { message?: { content?: unknown; refusal?: unknown } }[] };
  try {
    reply = JSON.parse(text);
  } catch {
    return { ok: false, message: `${url} answered with something that is not JSON: ${text.slice(0, 200)}` };
  }
  const message = reply.choices?.[0]?.message;
  if (typeof message?.refusal === 'string' && message.refusal)
    return { ok: false, message: `the model refused: ${message.refusal}` };
  if (typeof message?.content !== 'string')
    return { ok: false, message: `${url} answered without choices[0].message.content` };
  return { ok: true, content: message.content };
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
  const builtins = BUILTINS.map((name) => `  - ${name}: ${BUILTIN_DESCRIPTIONS[name]}`).join('\n');
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
    '',
    'Timeouts are durations such as "30s" or "5m". Leave optional fields null unless they matter.',
  ];
  if (options.personas?.length) lines.push(`Prefer these personas for flows: ${options.personas.join(', ')}.`);
  if (options.models?.length) lines.push(`Models available for llm actions: ${options.models.join(', ')}.`);
  return lines.join('\n');
}
