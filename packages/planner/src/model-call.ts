import type { Problem } from './validate.js';

/** An OpenAI-compatible chat endpoint and how to call it. */
export interface ModelEndpoint {
  /** Base URL, including its version path: `http://127.0.0.1:11434/v1`. */
  baseUrl: string;
  apiKey?: string;
  model: string;
  /** Model calls in all, the first included; each retry carries the previous reply's problems. Default 3. */
  maxAttempts?: number;
  fetch?: typeof globalThis.fetch;
  signal?: AbortSignal;
  temperature?: number;
}

export type ChatMessage = { role: 'system' | 'user' | 'assistant'; content: string };

/** A reply held to the rules: its value, or its problems; `text` is what is fed back to the model. */
export type Checked<T> = { ok: true; value: T; text: string } | { ok: false; problems: Problem[]; text: string };

export type AskResult<T> =
  | { ok: true; value: T; attempts: number }
  | { ok: false; problems: Problem[]; attempts: number };

/**
 * Asks a model for JSON matching `format` (strict structured output) and checks the reply; an invalid one is
 * sent back with its problems until one passes or `maxAttempts` calls are spent. Rejects only when `signal` aborts.
 */
export async function askUntilValid<T>(
  messages: ChatMessage[],
  format: { name: string; schema: Record<string, unknown> },
  check: (content: string, attempt: number) => Checked<T>,
  endpoint: ModelEndpoint,
): Promise<AskResult<T>> {
  const maxAttempts = Math.max(1, endpoint.maxAttempts ?? 3);
  const conversation = [...messages];
  let problems: Problem[] = [];
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const completion = await requestCompletion(conversation, format, endpoint);
    if (!completion.ok) return { ok: false, problems: [endpointProblem(completion.message)], attempts: attempt };
    const reply = check(completion.content, attempt);
    if (reply.ok) return { ok: true, value: reply.value, attempts: attempt };
    problems = reply.problems;
    conversation.push(
      { role: 'assistant', content: reply.text },
      { role: 'user', content: problemsFeedback(problems) },
    );
  }
  return { ok: false, problems, attempts: maxAttempts };
}

function problemsFeedback(problems: Problem[]): string {
  return [
    'That answer is not valid. Problems (field path, then what is wrong):',
    ...problems.map((p) => `- ${p.field || '(whole reply)'}${p.line > 0 ? ` (line ${p.line})` : ''}: ${p.message}`),
    'Reply with the whole corrected answer as JSON.',
  ].join('\n');
}

function endpointProblem(message: string): Problem {
  return { file: 'model endpoint', line: 0, column: 0, field: '', message };
}

type CompletionResult = { ok: true; content: string } | { ok: false; message: string };

async function requestCompletion(
  messages: ChatMessage[],
  format: { name: string; schema: Record<string, unknown> },
  endpoint: ModelEndpoint,
): Promise<CompletionResult> {
  const fetchImpl = endpoint.fetch ?? globalThis.fetch;
  const url = `${endpoint.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const body = {
    model: endpoint.model,
    messages,
    ...(endpoint.temperature === undefined ? {} : { temperature: endpoint.temperature }),
    response_format: { type: 'json_schema', json_schema: { ...format, strict: true } },
  };
  let response: Response;
  try {
    response = await fetchImpl(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(endpoint.apiKey ? { authorization: `Bearer ${endpoint.apiKey}` } : {}),
      },
      body: JSON.stringify(body),
      signal: endpoint.signal,
    });
  } catch (error) {
    if (endpoint.signal?.aborted) throw error;
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

/** Parses a reply as JSON and re-prints it without nulls; a reply that is not JSON is a problem of its own. */
export function parseReply(content: string, source: string): { ok: true; value: unknown } | Checked<never> {
  try {
    return { ok: true, value: JSON.parse(content) };
  } catch (error) {
    const message = `the reply is not JSON: ${(error as Error).message}`;
    return { ok: false, text: content, problems: [{ file: source, line: 0, column: 0, field: '', message }] };
  }
}
