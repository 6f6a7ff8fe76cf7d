import type { ModelInfo, ModelProvider } from '@hermes-mesh/protocol';

export interface ModelEndpoint {
  provider: ModelProvider;
  url: string;
  /** Environment variable with the bearer key (OpenAI-compatible servers). */
  apiKeyEnv?: string;
}

export type Discovery = { models: ModelInfo[]; warning?: string };

/**
 * Context lengths learnt from Ollama's /api/show, keyed by endpoint, model and digest: a model's metadata never
 * changes under one digest, so each model costs one request per prober, not one per probe.
 */
export type ContextLengthCache = Map<string, number>;

/** How one discovery runs: a timeout per HTTP request, and a signal that stops it early (the prober closing). */
export interface DiscoveryOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Ollama only: where context lengths from /api/show are kept; without one, /api/show is not asked. */
  contextCache?: ContextLengthCache;
  /** OpenAI-compatible only: where apiKeyEnv is looked up. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

type Json = Record<string, unknown>;

class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

async function requestJson(url: string, options: DiscoveryOptions, init: RequestInit = {}): Promise<unknown> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  const res = await fetch(url, { ...init, signal });
  if (!res.ok) {
    await res.body?.cancel();
    throw new HttpStatusError(res.status);
  }
  return res.json();
}

function hintFor(err: unknown, apiKeyEnv?: string): string {
  if (err instanceof HttpStatusError) {
    if (err.status === 401 || err.status === 403) return `is the API key${apiKeyEnv ? ` in ${apiKeyEnv}` : ''} right?`;
    return 'is the URL in the node config the server base URL?';
  }
  if ((err as Error).name === 'TimeoutError') return 'the server is up but slow, or a firewall drops the traffic';
  return 'is the server running, and is the URL in the node config right?';
}

function describeFailure(url: string, err: unknown, apiKeyEnv?: string): string {
  const e = err as Error & { cause?: { code?: string } };
  const why = e.cause?.code ?? (e.name === 'TimeoutError' ? 'timed out' : e.message);
  return `no models from ${url} (${why}): ${hintFor(err, apiKeyEnv)}`;
}

const str = (v: unknown, max: number) => (typeof v === 'string' ? v.slice(0, max) : '');
const count = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0);
const objectOf = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});

function arrayOf(value: unknown): Json[] {
  return Array.isArray(value) ? value.filter((v) => typeof v === 'object' && v !== null) : [];
}

/** The trained context length in /api/show's model_info ("<architecture>.context_length"). */
function contextLengthFromShow(show: unknown): number {
  const info = objectOf(objectOf(show).model_info);
  const arch = info['general.architecture'];
  return typeof arch === 'string' ? count(info[`${arch}.context_length`]) : 0;
}

async function ollamaContextLength(
  base: string,
  model: Json,
  options: DiscoveryOptions,
  cache: ContextLengthCache,
): Promise<number> {
  const name = str(model.name ?? model.model, 256);
  const key = `${base} ${name} ${str(model.digest, 128)}`;
  const known = cache.get(key);
  if (known !== undefined) return known;
  try {
    const show = await requestJson(`${base}/api/show`, options, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: name }),
    });
    const ctx = contextLengthFromShow(show);
    cache.set(key, ctx);
    return ctx;
  } catch {
    return 0; // optional detail: tried again on the next probe, and the model is listed all the same
  }
}

/**
 * Ollama: installed models from /api/tags; which are loaded, with their VRAM and running context, from /api/ps;
 * the trained context of the others from /api/show (once per model digest, and only when a cache is given).
 */
export async function discoverOllama(baseUrl: string, options: DiscoveryOptions): Promise<Discovery> {
  const { contextCache } = options;
  const base = baseUrl.replace(/\/+$/, '');
  let tags: unknown;
  let ps: unknown;
  try {
    [tags, ps] = await Promise.all([
      requestJson(`${base}/api/tags`, options),
      // Older servers have no /api/ps: their models are simply not known to be loaded.
      requestJson(`${base}/api/ps`, options).catch(() => ({ models: [] })),
    ]);
  } catch (err) {
    return { models: [], warning: describeFailure(base, err) };
  }
  const loaded = new Map<string, { vram: number; ctx: number }>();
  for (const m of arrayOf(objectOf(ps).models)) {
    loaded.set(str(m.name ?? m.model, 256), { vram: count(m.size_vram), ctx: count(m.context_length) });
  }
  const installed = arrayOf(objectOf(tags).models).filter((m) => str(m.name ?? m.model, 256) !== '');
  const models = await Promise.all(
    installed.map(async (m): Promise<ModelInfo> => {
      const name = str(m.name ?? m.model, 256);
      const details = objectOf(m.details);
      const live = loaded.get(name);
      const ctx = live?.ctx || (contextCache ? await ollamaContextLength(base, m, options, contextCache) : 0);
      return {
        name,
        provider: 'ollama',
        endpoint: base,
        loaded: live !== undefined,
        sizeBytes: count(m.size),
        vramBytes: live?.vram ?? 0,
        quant: str(details.quantization_level, 64),
        family: str(details.family, 64),
        parameterSize: str(details.parameter_size, 32),
        ctx,
      };
    }),
  );
  return { models };
}

/**
 * Any OpenAI-compatible server (vLLM, llama.cpp server, hosted APIs): /v1/models. Served models count as loaded.
 * vLLM reports max_model_len; llama.cpp's server reports meta.n_ctx_train and meta.size.
 */
export async function discoverOpenAICompatible(endpoint: ModelEndpoint, options: DiscoveryOptions): Promise<Discovery> {
  const base = endpoint.url.replace(/\/+$/, '').replace(/\/v1$/, '');
  const key = endpoint.apiKeyEnv ? (options.env ?? process.env)[endpoint.apiKeyEnv] : undefined;
  if (endpoint.apiKeyEnv && !key) {
    return { models: [], warning: `no models from ${base}: environment variable ${endpoint.apiKeyEnv} is not set` };
  }
  let body: unknown;
  try {
    body = await requestJson(`${base}/v1/models`, options, key ? { headers: { authorization: `Bearer ${key}` } } : {});
  } catch (err) {
    return { models: [], warning: describeFailure(base, err, endpoint.apiKeyEnv) };
  }
  const models = arrayOf(objectOf(body).data)
    .filter((m) => str(m.id, 256) !== '')
    .map((m): ModelInfo => {
      const meta = objectOf(m.meta);
      return {
        name: str(m.id, 256),
        provider: endpoint.provider,
        endpoint: base,
        loaded: true,
        sizeBytes: count(meta.size),
        vramBytes: 0,
        quant: '',
        family: '',
        parameterSize: '',
        ctx: count(m.max_model_len ?? m.context_length ?? meta.n_ctx_train),
      };
    });
  return { models };
}

export function discoverModels(endpoint: ModelEndpoint, options: DiscoveryOptions): Promise<Discovery> {
  return endpoint.provider === 'ollama'
    ? discoverOllama(endpoint.url, options)
    : discoverOpenAICompatible(endpoint, options);
}
