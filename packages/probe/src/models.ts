import type { ModelInfo, ModelProvider } from '@hermes-mesh/protocol';

export interface ModelEndpoint {
  provider: ModelProvider;
  url: string;
  /** Environment variable with the bearer key (OpenAI-compatible servers). */
  apiKeyEnv?: string;
}

export type Discovery = { models: ModelInfo[]; warning?: string };

async function getJson(url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<unknown> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

function describeFailure(url: string, err: unknown): string {
  const e = err as Error & { cause?: { code?: string } };
  const why = e.cause?.code ?? (e.name === 'TimeoutError' ? 'timed out' : e.message);
  return `no models from ${url} (${why}): is the server running, and is the URL in the node config right?`;
}

const str = (v: unknown, fallback = '') => (typeof v === 'string' ? v : fallback);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0);

/** Ollama: installed models from /api/tags, which of them are loaded (and their VRAM) from /api/ps. */
export async function discoverOllama(baseUrl: string, timeoutMs: number): Promise<Discovery> {
  const base = baseUrl.replace(/\/+$/, '');
  try {
    const [tags, ps] = await Promise.all([
      getJson(`${base}/api/tags`, timeoutMs),
      getJson(`${base}/api/ps`, timeoutMs).catch(() => ({ models: [] })),
    ]);
    const loaded = new Map<string, { vram: number; ctx: number }>();
    for (const m of arrayOf((ps as { models?: unknown }).models)) {
      loaded.set(str(m.name ?? m.model), { vram: num(m.size_vram), ctx: num(m.context_length) });
    }
    const models = arrayOf((tags as { models?: unknown }).models)
      .filter((m) => str(m.name ?? m.model) !== '')
      .map((m): ModelInfo => {
        const name = str(m.name ?? m.model);
        const details = (typeof m.details === 'object' && m.details !== null ? m.details : {}) as Record<
          string,
          unknown
        >;
        const live = loaded.get(name);
        return {
          name: name.slice(0, 256),
          provider: 'ollama',
          endpoint: base,
          loaded: live !== undefined,
          sizeBytes: num(m.size),
          vramBytes: live?.vram ?? 0,
          quant: str(details.quantization_level).slice(0, 64),
          family: str(details.family).slice(0, 64),
          parameterSize: str(details.parameter_size).slice(0, 32),
          ctx: live?.ctx ?? 0,
        };
      });
    return { models };
  } catch (err) {
    return { models: [], warning: describeFailure(base, err) };
  }
}

/** Any OpenAI-compatible server (vLLM, llama.cpp server, hosted APIs): /v1/models. Served models count as loaded. */
export async function discoverOpenAICompatible(
  endpoint: ModelEndpoint,
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Discovery> {
  const base = endpoint.url.replace(/\/+$/, '').replace(/\/v1$/, '');
  const key = endpoint.apiKeyEnv ? env[endpoint.apiKeyEnv] : undefined;
  if (endpoint.apiKeyEnv && !key) {
    return { models: [], warning: `no models from ${base}: environment variable ${endpoint.apiKeyEnv} is not set` };
  }
  try {
    const body = await getJson(`${base}/v1/models`, timeoutMs, key ? { authorization: `Bearer ${key}` } : {});
    const models = arrayOf((body as { data?: unknown }).data)
      .filter((m) => str(m.id) !== '')
      .map(
        (m): ModelInfo => ({
          name: str(m.id).slice(0, 256),
          provider: endpoint.provider,
          endpoint: base,
          loaded: true,
          sizeBytes: 0,
          vramBytes: 0,
          quant: '',
          family: '',
          parameterSize: '',
          ctx: num(m.max_model_len ?? m.context_length),
        }),
      );
    return { models };
  } catch (err) {
    return { models: [], warning: describeFailure(base, err) };
  }
}

function arrayOf(value: unknown): Array<Record<string, unknown>> {
  return Array.isArray(value) ? value.filter((v) => typeof v === 'object' && v !== null) : [];
}

export function discoverModels(endpoint: ModelEndpoint, timeoutMs: number): Promise<Discovery> {
  return endpoint.provider === 'ollama'
    ? discoverOllama(endpoint.url, timeoutMs)
    : discoverOpenAICompatible(endpoint, timeoutMs);
}
