import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverOllama, discoverOpenAICompatible } from './models.js';
import { createCpuLoadSampler, createProber } from './prober.js';

/** An Ollama server speaking the real /api/tags and /api/ps shapes, and an OpenAI-compatible /v1/models. */
let server: Server;
let base: string;
const seenAuth: Array<string | undefined> = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/api/tags') {
      return json({
        models: [
          {
            name: 'qwen3:8b',
            model: 'qwen3:8b',
            modified_at: '2025-10-01T10:00:00.000Z',
            size: 5_225_387_923,
            digest: '500a1f067a9f782620b40bee6f7b0c89e17ae61f686b92c24933e4ca4b2b8b41',
            details: {
              parent_model: '',
              format: 'gguf',
              family: 'qwen3',
              families: ['qwen3'],
              parameter_size: '8.2B',
              quantization_level: 'Q4_K_M',
            },
          },
          {
            name: 'llama3.1:70b',
            model: 'llama3.1:70b',
            modified_at: '2025-09-12T08:00:00.000Z',
            size: 42_520_412_561,
            digest: 'd3a5f4e3b2c1',
            details: {
              parent_model: '',
              format: 'gguf',
              family: 'llama',
              families: ['llama'],
              parameter_size: '70.6B',
              quantization_level: 'Q4_K_M',
            },
          },
        ],
      });
    }
    if (req.url === '/api/ps') {
      return json({
        models: [
          {
            name: 'qwen3:8b',
            model: 'qwen3:8b',
            size: 6_654_289_920,
            digest: '500a1f067a9f',
            details: { family: 'qwen3', parameter_size: '8.2B', quantization_level: 'Q4_K_M' },
            expires_at: '2025-11-24T19:35:00.000Z',
            size_vram: 6_654_289_920,
            context_length: 4096,
          },
        ],
      });
    }
    if (req.url === '/v1/models') {
      seenAuth.push(req.headers.authorization);
      return json({
        object: 'list',
        data: [{ id: 'Qwen/Qwen2.5-32B-Instruct', object: 'model', owned_by: 'vllm', max_model_len: 32768 }],
      });
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** A port nothing listens on: bind one, note it, close it. */
async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

describe('model discovery', () => {
  it('Ollama: installed models with size, family, quant; the loaded one with its VRAM and context', async () => {
    const { models, warning } = await discoverOllama(base, 2_000);
    expect(warning).toBeUndefined();
    expect(models).toEqual([
      {
        name: 'qwen3:8b',
        provider: 'ollama',
        endpoint: base,
        loaded: true,
        sizeBytes: 5_225_387_923,
        vramBytes: 6_654_289_920,
        quant: 'Q4_K_M',
        family: 'qwen3',
        parameterSize: '8.2B',
        ctx: 4096,
      },
      expect.objectContaining({ name: 'llama3.1:70b', loaded: false, vramBytes: 0, parameterSize: '70.6B' }),
    ]);
  });

  it('OpenAI-compatible: served models, with the API key from the named variable', async () => {
    const { models } = await discoverOpenAICompatible(
      { provider: 'vllm', url: `${base}/v1`, apiKeyEnv: 'VLLM_KEY' },
      2_000,
      {
        VLLM_KEY: 'k-123',
      },
    );
    expect(models).toEqual([
      expect.objectContaining({ name: 'Qwen/Qwen2.5-32B-Instruct', provider: 'vllm', loaded: true, ctx: 32768 }),
    ]);
    expect(seenAuth.at(-1)).toBe('Bearer k-123');
    const missingKey = await discoverOpenAICompatible({ provider: 'openai', url: base, apiKeyEnv: 'NOPE' }, 2_000, {});
    expect(missingKey).toEqual({ models: [], warning: expect.stringMatching(/NOPE is not set/) });
  });

  it('a down endpoint gives no models and a warning that names it', async () => {
    const url = await deadUrl();
    const { models, warning } = await discoverOllama(url, 2_000);
    expect(models).toEqual([]);
    expect(warning).toContain(url);
    expect(warning).toMatch(/ECONNREFUSED/);
  });
});

describe('createProber', () => {
  it('a box without GPUs or Ollama still probes correctly', async () => {
    const prober = createProber({
      nvidiaSmiPath: '/nonexistent/nvidia-smi',
      modelEndpoints: [{ provider: 'ollama', url: await deadUrl() }],
    });
    const r = await prober.probe();
    await prober.close();
    expect(r.cpu.cores).toBeGreaterThan(0);
    expect(r.cpu.load).toBeGreaterThanOrEqual(0);
    expect(r.cpu.load).toBeLessThanOrEqual(1);
    expect(r.mem.total).toBeGreaterThan(r.mem.free);
    expect(r.gpus.filter((g) => g.vendor === 'NVIDIA')).toEqual([]);
    expect(r.models).toEqual([]);
    expect(r.warnings).toEqual([expect.stringMatching(/no models from/)]);
    expect(['COMPUTE_HOST', 'FULL', 'STANDARD', 'LITE', 'OBSERVER']).toContain(r.tier);
  });

  it('combines GPUs, models and tier from injected system information', async () => {
    const si = {
      graphics: async () => ({
        controllers: [
          {
            vendor: 'Advanced Micro Devices, Inc. [AMD/ATI]',
            model: 'Radeon RX 7900 XTX',
            vram: 24_560,
            memoryUsed: 560,
          },
        ],
      }),
    } as never;
    const prober = createProber({
      si,
      cpuLoad: () => 0.25,
      memory: () => ({ total: 64 * 2 ** 30, free: 40 * 2 ** 30 }),
      nvidiaSmiPath: '/nonexistent',
      modelEndpoints: [{ provider: 'ollama', url: base }],
    });
    const r = await prober.probe();
    expect(r.cpu.load).toBe(0.25);
    expect(r.mem).toEqual({ total: 64 * 2 ** 30, free: 40 * 2 ** 30 });
    expect(r.gpus).toEqual([
      {
        index: 0,
        name: 'Radeon RX 7900 XTX',
        vendor: 'Advanced Micro Devices, Inc. [AMD/ATI]',
        vramTotal: 24_560 * 2 ** 20,
        vramFree: 24_000 * 2 ** 20,
        util: -1,
      },
    ]);
    expect(r.models.map((m) => m.name)).toEqual(['qwen3:8b', 'llama3.1:70b']);
    // Tier depends on this machine's real core count (os.cpus()); with a 24 GB GPU and 64 GB RAM it is at least FULL when cores >= 4.
    expect(r.tier).toBe(r.cpu.cores >= 4 ? 'COMPUTE_HOST' : 'LITE');
  });

  it('repeats the slow hardware scans only every rescan interval', async () => {
    let t = 0;
    let graphicsCalls = 0;
    const si = {
      graphics: async () => {
        graphicsCalls++;
        return { controllers: [] };
      },
    } as never;
    const dir = mkdtempSync(join(tmpdir(), 'smi-count-'));
    const counter = join(dir, 'calls');
    const smi = join(dir, 'nvidia-smi');
    // Counts its runs, then fails like a box whose driver is missing.
    writeFileSync(smi, `#!/bin/sh\necho x >> '${counter}'\nexit 9\n`);
    chmodSync(smi, 0o755);
    const prober = createProber({ si, nvidiaSmiPath: smi, hardwareRescanMs: 60_000, now: () => t });
    await prober.probe();
    t = 30_000;
    await prober.probe();
    expect(graphicsCalls).toBe(1);
    expect(readFileSync(counter, 'utf8').trim().split('\n')).toHaveLength(1);
    t = 61_000;
    await prober.probe();
    expect(graphicsCalls).toBe(2);
    expect(readFileSync(counter, 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('measures CPU load from tick counters between probes', () => {
    let ticks = { user: 100, nice: 0, sys: 0, idle: 900, irq: 0 };
    const read = () => [{ model: 'x', speed: 1, times: ticks }];
    const sample = createCpuLoadSampler(read);
    ticks = { user: 400, nice: 0, sys: 100, idle: 1300, irq: 0 };
    expect(sample()).toBe(0.5);
    expect(sample()).toBe(0);
  });
});
