import type { Assignment, LlmParams } from '@hermes-mesh/protocol';
import { bytesOfOutput, type DependencyInputs } from './inputs.js';
import { type ExecutorLogger, outputOf, permanent, type RunOptions, type RunResult, transient } from './types.js';

export interface ProviderConfig {
  name: string;
  /** OpenAI-compatible base URL, with or without the trailing /v1. */
  baseUrl: string;
  apiKeyEnv?: string;
  defaultModel?: string;
  /** When given, the only models this provider accepts. */
  models?: string[];
}

export interface DelegationDefaults {
  provider?: string;
  model?: string;
  reasoningEffort?: 'low' | 'medium' | 'high';
}

export type ModelResolution =
  | { ok: true; provider: ProviderConfig; model: string; apiKey?: string; warnings: string[]; via: string }
  | { ok: false; error: string };

/**
 * Which provider and model an llm action uses: per-call > delegation config > the provider's default model >
 * the parent's model. A provider named without a model takes that provider's default, never the parent's
 * model (which that provider may not have). Unknown providers and models fail here, before any request.
 */
export function resolveModel(input: {
  provider?: string;
  model?: string;
  providers: ProviderConfig[];
  delegation?: DelegationDefaults;
  parentModel?: string;
  env?: NodeJS.ProcessEnv;
}): ModelResolution {
  const { providers } = input;
  const env = input.env ?? process.env;
  const warnings: string[] = [];
  if (providers.length === 0)
    return { ok: false, error: 'this node has no LLM providers configured (providers: in hermesd.yaml)' };
  const providerName = input.provider ?? input.delegation?.provider;
  const provider = providerName ? providers.find((p) => p.name === providerName) : providers[0];
  if (!provider) {
    return {
      ok: false,
      error: `unknown provider ${providerName}; this node knows ${providers.map((p) => p.name).join(', ')}`,
    };
  }
  let model: string | undefined;
  let via: string;
  if (input.model) {
    model = input.model;
    via = 'per-call';
  } else if (input.provider) {
    model = provider.defaultModel;
    via = 'provider default';
    if (!model) return { ok: false, error: `provider ${provider.name} has no defaultModel: name a model with --model` };
    warnings.push(`no model given for provider ${provider.name}: using its default model ${model}`);
  } else if (input.delegation?.model) {
    model = input.delegation.model;
    via = 'delegation config';
  } else if (provider.defaultModel) {
    model = provider.defaultModel;
    via = 'provider default';
  } else if (input.parentModel) {
    model = input.parentModel;
    via = 'parent';
    warnings.push(`falling back to the parent's model ${model}`);
  } else {
    return { ok: false, error: `no model for provider ${provider.name}: set defaultModel or name a model` };
  }
  if (provider.models && !provider.models.includes(model)) {
    return {
      ok: false,
      error: `provider ${provider.name} has no model ${model}; it serves ${provider.models.join(', ')}`,
    };
  }
  let apiKey: string | undefined;
  if (provider.apiKeyEnv) {
    apiKey = env[provider.apiKeyEnv];
    if (!apiKey)
      return {
        ok: false,
        error: `provider ${provider.name} needs its API key in $${provider.apiKeyEnv}, which is not set`,
      };
  }
  return { ok: true, provider, model, ...(apiKey ? { apiKey } : {}), warnings, via };
}

/** The header a delegated model sees: it serves an agent, not a person, and must end with the footer. */
export function delegationHeader(
  goalId: string,
  delegation: NonNullable<Assignment['delegation']> | undefined,
): string {
  const depth = delegation?.depth ?? 0;
  const subagents = delegation
    ? delegation.allowSubagents && depth < delegation.maxDepth
      ? 'ALLOWED'
      : 'NOT ALLOWED'
    : 'ALLOWED';
  return [
    `<DELEGATED task ${goalId} | depth ${depth} | subagents ${subagents}>`,
    'You are working for another agent, not talking to a person. Do the task completely and report the result plainly.',
    `End your answer with the line: [hermes task ${goalId} done]`,
  ].join('\n');
}

/** The prompt, after the outputs of the actions it reads (each also in `after`), labelled by action id. */
function withInputs(params: LlmParams, inputs: DependencyInputs): string {
  const ids = params.input?.fromActions ?? [];
  if (ids.length === 0) return params.prompt;
  const parts = ids.map(
    (id) =>
      `Output of ${id}:\n${bytesOfOutput(inputs[id]?.value ?? '(none)')
        .toString('utf8')
        .trim()}`,
  );
  return `${parts.join('\n\n')}\n\n${params.prompt}`;
}

function chatUrl(baseUrl: string): string {
  const base = baseUrl.replace(/\/+$/, '');
  return `${base.endsWith('/v1') ? base : `${base}/v1`}/chat/completions`;
}

export async function runLlm(
  assignment: Assignment,
  params: LlmParams,
  ctx: {
    inputs?: DependencyInputs;
    providers: ProviderConfig[];
    delegation?: DelegationDefaults;
    env?: NodeJS.ProcessEnv;
    fetch?: typeof fetch;
    logger: ExecutorLogger;
  },
  options: RunOptions,
): Promise<RunResult> {
  const resolved = resolveModel({
    ...(assignment.provider ? { provider: assignment.provider } : {}),
    ...(assignment.model ? { model: assignment.model } : {}),
    providers: ctx.providers,
    ...(ctx.delegation ? { delegation: ctx.delegation } : {}),
    ...(ctx.env ? { env: ctx.env } : {}),
  });
  if (!resolved.ok) return permanent('model-resolution', resolved.error);
  for (const w of resolved.warnings) ctx.logger.warn({ action: assignment.actionId }, w);
  const system = [
    assignment.delegation && assignment.delegation.depth > 0
      ? delegationHeader(assignment.goalId, assignment.delegation)
      : undefined,
    params.system,
  ]
    .filter(Boolean)
    .join('\n\n');
  const messages = [
    ...(system ? [{ role: 'system', content: system }] : []),
    ...(params.history ?? []),
    { role: 'user', content: withInputs(params, ctx.inputs ?? {}) },
  ];
  const effort = params.reasoningEffort ?? ctx.delegation?.reasoningEffort;
  const body: Record<string, unknown> = { model: resolved.model, messages };
  if (effort) body.reasoning_effort = effort;
  if (params.temperature !== undefined) body.temperature = params.temperature;
  if (params.maxTokens !== undefined) body.max_tokens = params.maxTokens;
  if (params.responseFormat === 'json') body.response_format = { type: 'json_object' };
  const doFetch = ctx.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(chatUrl(resolved.provider.baseUrl), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(resolved.apiKey ? { authorization: `Bearer ${resolved.apiKey}` } : {}),
      },
      body: JSON.stringify(body),
      signal: options.signal,
    });
  } catch (err) {
    if (options.signal.aborted) return permanent('aborted', 'aborted');
    return transient('unreachable', `provider ${resolved.provider.name} unreachable: ${(err as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text.slice(0, 500);
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
    } catch {
      // not JSON
    }
    const retry = res.status === 429 || res.status >= 500;
    return (retry ? transient : permanent)(
      `http-${res.status}`,
      `provider ${resolved.provider.name} answered ${res.status}: ${message}`,
    );
  }
  let content: string;
  let usage: unknown;
  try {
    const json = JSON.parse(text) as { choices?: Array<{ message?: { content?: string } }>; usage?: unknown };
    content = json.choices?.[0]?.message?.content ?? '';
    usage = json.usage;
  } catch {
    return transient('bad-reply', `provider ${resolved.provider.name} sent a reply that is not JSON`);
  }
  let value: unknown = { text: content, model: resolved.model, provider: resolved.provider.name, usage };
  if (params.responseFormat === 'json') {
    try {
      value = { json: JSON.parse(content), model: resolved.model, provider: resolved.provider.name, usage };
    } catch {
      return transient('not-json', `asked ${resolved.model} for JSON and it answered something else`);
    }
  }
  return outputOf(value, content.replace(/\s+/g, ' ').slice(0, 300));
}
