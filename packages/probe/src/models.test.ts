import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadUrl, type FakeModelServer, startFakeModelServer, VLLM_KEY } from '../test/fake-model-server.js';
import { type ContextLengthCache, discoverOllama, discoverOpenAICompatible } from './models.js';

let server: FakeModelServer;
beforeAll(async () => {
  server = await startFakeModelServer();
});
afterAll(() => server.close());

describe('Ollama discovery', () => {
  it('installed models with size, family, quant; the loaded one with its VRAM and running context', async () => {
    const { models, warning } = await discoverOllama(`${server.url}/`, { timeoutMs: 2_000 });
    expect(warning).toBeUndefined();
    expect(models).toEqual([
      {
        name: 'qwen3:8b',
        provider: 'ollama',
        endpoint: server.url,
        loaded: true,
        sizeBytes: 5_225_387_923,
        vramBytes: 6_654_289_920,
        quant: 'Q4_K_M',
        family: 'qwen3',
        parameterSize: '8.2B',
        ctx: 4096,
      },
      {
        name: 'llama3.1:70b',
        provider: 'ollama',
        endpoint: server.url,
        loaded: false,
        sizeBytes: 42_520_412_561,
        vramBytes: 0,
        quant: 'Q4_K_M',
        family: 'llama',
        parameterSize: '70.6B',
        ctx: 0,
      },
    ]);
  });

  it('asks /api/show for the context of models not loaded, once per model digest', async () => {
    const cache: ContextLengthCache = new Map();
    const shows = () => server.requests.filter((r) => r.startsWith('POST /api/show'));
    const before = shows().length;
    const first = await discoverOllama(server.url, { timeoutMs: 2_000, contextCache: cache });
    const second = await discoverOllama(server.url, { timeoutMs: 2_000, contextCache: cache });
    expect(first.models.map((m) => [m.name, m.ctx])).toEqual([
      ['qwen3:8b', 4096], // loaded: the context it runs with, from /api/ps
      ['llama3.1:70b', 131_072], // not loaded: its trained context, from /api/show
    ]);
    expect(second).toEqual(first);
    expect(shows().slice(before)).toEqual(['POST /api/show llama3.1:70b']);
  });

  it('a down endpoint gives no models and a warning that names it and what to check', async () => {
    const url = await deadUrl();
    const { models, warning } = await discoverOllama(url, { timeoutMs: 2_000 });
    expect(models).toEqual([]);
    expect(warning).toBe(
      `no models from ${url} (ECONNREFUSED): is the server running, and is the URL in the node config right?`,
    );
  });

  it('an endpoint that does not answer times out', async () => {
    const started = performance.now();
    const { models, warning } = await discoverOllama(`${server.url}/hang`, { timeoutMs: 200 });
    expect(models).toEqual([]);
    expect(warning).toMatch(/^no models from .*\/hang \(timed out\)/);
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  it('a server that is not Ollama gives a warning, not models', async () => {
    const { models, warning } = await discoverOllama(`${server.url}/llamacpp`, { timeoutMs: 2_000 });
    expect(models).toEqual([]);
    expect(warning).toMatch(/\(HTTP 404\): is the URL in the node config the server base URL\?/);
  });
});

describe('OpenAI-compatible discovery', () => {
  it('vLLM: served models with their context, the API key sent from the named variable', async () => {
    const endpoint = { provider: 'vllm' as const, url: `${server.url}/v1`, apiKeyEnv: 'VLLM_KEY' };
    const { models, warning } = await discoverOpenAICompatible(endpoint, { timeoutMs: 2_000, env: { VLLM_KEY } });
    expect(warning).toBeUndefined();
    expect(models).toEqual([
      {
        name: 'Qwen/Qwen2.5-32B-Instruct',
        provider: 'vllm',
        endpoint: server.url,
        loaded: true,
        sizeBytes: 0,
        vramBytes: 0,
        quant: '',
        family: '',
        parameterSize: '',
        ctx: 32_768,
      },
    ]);
  });

  it('llama.cpp server: size and trained context from its meta block', async () => {
    const { models } = await discoverOpenAICompatible(
      { provider: 'llamacpp', url: `${server.url}/llamacpp` },
      { timeoutMs: 2_000 },
    );
    expect(models).toEqual([
      expect.objectContaining({
        name: 'Qwen2.5-7B-Instruct-Q4_K_M.gguf',
        provider: 'llamacpp',
        endpoint: `${server.url}/llamacpp`,
        sizeBytes: 4_677_120_000,
        ctx: 32_768,
      }),
    ]);
  });

  it('a missing or wrong API key is a warning that names the variable', async () => {
    const endpoint = { provider: 'openai' as const, url: server.url, apiKeyEnv: 'OPENAI_KEY' };
    expect(await discoverOpenAICompatible(endpoint, { timeoutMs: 2_000, env: {} })).toEqual({
      models: [],
      warning: `no models from ${server.url}: environment variable OPENAI_KEY is not set`,
    });
    expect(await discoverOpenAICompatible(endpoint, { timeoutMs: 2_000, env: { OPENAI_KEY: 'wrong' } })).toEqual({
      models: [],
      warning: `no models from ${server.url} (HTTP 401): is the API key in OPENAI_KEY right?`,
    });
  });
});
