import { actionKindsHelp } from './decompose.js';
import { type FlatAction, flattenPlan } from './flatten.js';
import { askUntilValid, type Checked, type ModelEndpoint, parseReply } from './model-call.js';
import { dropNulls, fallbackResponseSchema } from './response-schema.js';
import { PlanValidationError, type Problem, parsePlan } from './validate.js';

/** An action that failed for good, as a verifier model is shown it. */
export interface FailedAction {
  goal: string;
  action: { id: string; kind: string; params: unknown; description?: string };
  error: string;
  attempts: number;
  /** The actions it depends on (plan ids), with a summary of what each produced. */
  dependencies: Array<{ id: string; summary: string }>;
}

export interface FallbackOptions extends ModelEndpoint {
  /** Commands the nodes allow for exec actions. */
  execCommands?: string[];
  /** Models the mesh serves: a replacement llm action may only name one of these. */
  models?: string[];
}

export type FallbackProposal =
  /** Run this instead (same id and dependencies; kind, params, placement and timeout may change). */
  | { ok: true; decision: 'replace'; action: FlatAction; reason: string; attempts: number }
  /** Nothing sensible replaces it: the goal fails, with the verifier's reason. */
  | { ok: true; decision: 'abort'; reason: string; attempts: number }
  /** The verifier never gave a usable answer (or could not be reached): a person has to decide. */
  | { ok: false; problems: Problem[]; attempts: number };

type Verdict = { decision: 'replace'; action: FlatAction; reason: string } | { decision: 'abort'; reason: string };

/**
 * Asks a verifier model what to do about an action that failed for good: a replacement action, or give up.
 * A replacement is held to the rules of a plan file (kinds, params, models, dependencies): it may read only the
 * outputs of the failed action's own dependencies. Invalid answers are sent back until valid or attempts run out.
 */
export async function proposeFallback(failed: FailedAction, options: FallbackOptions): Promise<FallbackProposal> {
  const result = await askUntilValid(
    [
      { role: 'system', content: verifierSystemPrompt(options) },
      { role: 'user', content: describeFailure(failed) },
    ],
    { name: 'hermes_fallback', schema: fallbackResponseSchema() },
    (content, attempt) => checkFallbackReply(content, failed, `verifier reply ${attempt}`, options.models),
    options,
  );
  if (!result.ok) return result;
  return { ok: true, ...result.value, attempts: result.attempts };
}

function verifierSystemPrompt(options: FallbackOptions): string {
  return [
    'You are the verifier of hermes-mesh, a mesh of machines that runs AI-agent work. An action of a plan failed',
    'on every attempt. Decide what to do, and reply with JSON only, matching the given schema:',
    '- decision "replace": give `action`, one action that reaches the same end another way (other params,',
    '  another kind, another model). Keep its id. It may only use outputs of the actions listed as its',
    '  dependencies (in `after` and `fromActions`).',
    '- decision "abort": when no other way can work; the goal then fails. `action` is null.',
    '`reason` says why, in one or two sentences, for the person who reads the goal later.',
    'Do not propose the same action again: it failed.',
    '',
    ...actionKindsHelp(options),
    ...(options.models?.length ? [`Models available for llm actions: ${options.models.join(', ')}.`] : []),
  ].join('\n');
}

function describeFailure(failed: FailedAction): string {
  const params = JSON.stringify(failed.action.params ?? null);
  const lines = [
    `Goal: ${failed.goal}`,
    `Failed action: ${failed.action.id} (kind ${failed.action.kind})`,
    ...(failed.action.description ? [`Description: ${failed.action.description}`] : []),
    `Params: ${params.length > 8000 ? `${params.slice(0, 8000)}...` : params}`,
    `Attempts: ${failed.attempts}`,
    `Last error: ${failed.error.slice(0, 4000)}`,
  ];
  if (failed.dependencies.length === 0) lines.push('Dependencies: none');
  else {
    lines.push('Dependencies (their outputs may be used):');
    for (const d of failed.dependencies) lines.push(`- ${d.id}: ${d.summary.slice(0, 500)}`);
  }
  return lines.join('\n');
}

/**
 * The reply held to the plan rules: the proposed action goes into a one-flow plan next to stand-ins for the
 * failed action's dependencies, so parsePlan checks its kind, params and `after` exactly as in a file.
 */
export function checkFallbackReply(
  content: string,
  failed: FailedAction,
  source: string,
  models?: string[],
): Checked<Verdict> {
  const parsed = parseReply(content, source);
  if (!parsed.ok) return parsed;
  const reply = dropNulls(parsed.value) as { decision?: unknown; reason?: unknown; action?: unknown };
  const text = JSON.stringify(reply, null, 2);
  const problem = (field: string, message: string): Checked<Verdict> => ({
    ok: false,
    text,
    problems: [{ file: source, line: 0, column: 0, field, message }],
  });
  if (typeof reply.reason !== 'string' || reply.reason.trim() === '') return problem('reason', 'say why');
  const reason = reply.reason.slice(0, 4000);
  if (reply.decision === 'abort') return { ok: true, value: { decision: 'abort', reason }, text };
  if (reply.decision !== 'replace') return problem('decision', 'must be "replace" or "abort"');
  if (typeof reply.action !== 'object' || reply.action === null)
    return problem('action', 'a "replace" decision needs the replacement action');
  const proposed = { ...(reply.action as Record<string, unknown>), id: failed.action.id };
  const plan = {
    goal: failed.goal,
    flows: [
      {
        id: 'fallback',
        persona: 'Verifier',
        actions: [
          ...failed.dependencies.map((d) => ({ id: d.id, kind: 'builtin', params: { name: 'noop' } })),
          proposed,
        ],
      },
    ],
  };
  try {
    const action = flattenPlan(parsePlan(JSON.stringify(plan, null, 2), source)).actions.at(-1)!;
    const model = action.requires.model;
    if (model && models && !models.includes(model))
      return problem('action/model', `no node serves ${model}; use one of: ${models.join(', ') || '(none)'}`);
    return { ok: true, value: { decision: 'replace', action, reason }, text };
  } catch (error) {
    if (!(error instanceof PlanValidationError)) throw error;
    // Name fields as the verifier wrote them: its action is the plan's last.
    const last = `flows/0/actions/${failed.dependencies.length}`;
    return {
      ok: false,
      text,
      problems: error.problems.map((p) => ({ ...p, field: p.field.replace(last, 'action'), line: 0 })),
    };
  }
}
